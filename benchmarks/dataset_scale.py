"""Benchmark: ``tpo eval`` over a dataset the size of a benchmark, on instant fake models.

For each size (805 prompts: AlpacaEval's; 5,000), runs the CLI as a subprocess with the
fake policy and reward (no model time), then runs the same command again: the first run's
wall time per prompt is the orchestration cost (graph, CLI, results file), its peak RSS the
memory, and the rerun the time resume takes to read the results file and skip every prompt.

    python -m benchmarks.dataset_scale [--sizes 805 5000] [-n 3] [-d 2] [--concurrency 8]

Targets (set from the measurements in docs/benchmarks.md, with room for a busy machine):
orchestration under 50 ms per prompt, peak RSS under 400 MB, a rerun under 5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import contention, show_table, verdict, write_json
from testsupport.fake_backends import fake_backend_env

TARGET_MS_PER_PROMPT = 50.0
TARGET_PEAK_MB = 400.0
TARGET_RERUN_S = 5.0


def timed_eval(data: Path, out: Path, args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one ``tpo eval`` subprocess."""
    env = {**os.environ, **fake_backend_env()}
    env.pop("TPO_FAKE_DELAY", None)
    command = [sys.executable, "-m", "langgraph_tpo.cli", "eval", str(data), "-o", str(out)]
    script = (
        "import resource, subprocess, sys, json;"
        "p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL);"
        "print(json.dumps([p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))"
    )
    start = time.perf_counter()
    probe = subprocess.run(
        [sys.executable, "-c", script, *command, *args], env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    returncode, peak_kb = json.loads(probe.stdout)
    if returncode != 0:
        raise SystemExit(f"tpo eval failed (exit {returncode}) on {data}")
    return seconds, peak_kb / 1024


def measure(size: int, args: list[str], workdir: Path) -> dict[str, Any]:
    """One size: the first run, then the rerun that skips everything."""
    data = workdir / f"prompts-{size}.json"
    data.write_text(json.dumps([f"Question {i}: how do I do thing {i}?" for i in range(size)]))
    out = workdir / f"results-{size}.jsonl"
    first_s, peak_mb = timed_eval(data, out, args)
    rerun_s, _ = timed_eval(data, out, args)
    return {
        "prompts": size,
        "first_run_s": round(first_s, 2),
        "ms_per_prompt": round(1000 * first_s / size, 2),
        "peak_rss_mb": round(peak_mb, 1),
        "rerun_skip_s": round(rerun_s, 2),
        "results_mb": round(out.stat().st_size / 2**20, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[805, 5000])
    parser.add_argument("-n", "--num-samples", type=int, default=3)
    parser.add_argument("-d", "--max-iterations", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--out", type=Path)
    options = parser.parse_args()
    args = ["-n", str(options.num_samples), "-d", str(options.max_iterations),
            "-c", str(options.concurrency)]  # fmt: skip
    before = contention()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(size, args, Path(tmp)) for size in options.sizes]
    columns = list(rows[0])
    show_table(
        f"tpo eval on instant fakes (N={options.num_samples}, D={options.max_iterations}, "
        f"concurrency {options.concurrency})",
        columns,
        [[row[c] for c in columns] for row in rows],
    )
    met = all(
        r["ms_per_prompt"] <= TARGET_MS_PER_PROMPT
        and r["peak_rss_mb"] <= TARGET_PEAK_MB
        and r["rerun_skip_s"] <= TARGET_RERUN_S
        for r in rows
    )
    print(
        f"targets (<= {TARGET_MS_PER_PROMPT:.0f} ms/prompt, <= {TARGET_PEAK_MB:.0f} MB, rerun "
        f"<= {TARGET_RERUN_S:.0f} s): {verdict(met)}"
    )
    write_json(
        "dataset_scale",
        {"rows": rows, "args": args, "contention": before, "self_rss_mb": _own_rss_mb()},
        options.out,
    )


def _own_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    main()
