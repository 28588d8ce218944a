"""Benchmark 7: how long ``tpo --help`` (and ``tpo run --help``) take to answer.

Runs each command ``--repeats`` times as a fresh process and reports wall time and CPU time
(user + system of the child, which a busy machine inflates less than wall time). Target:
``tpo --help`` well under a second.

    python -m benchmarks.cli_startup [--repeats 10] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import contention, show_table, verdict, write_json

COMMANDS = {"tpo --help": ["--help"], "tpo run --help": ["run", "--help"]}
TARGET_S = 1.0


def tpo() -> list[str]:
    script = Path(sys.executable).parent / "tpo"
    return [str(script)] if script.exists() else [sys.executable, "-m", "langgraph_tpo.cli"]


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_once(args: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one ``tpo ARGS`` process."""
    cpu, start = child_cpu(), time.perf_counter()
    subprocess.run([*tpo(), *args], capture_output=True, check=True, env=os.environ.copy())
    return time.perf_counter() - start, child_cpu() - cpu


def measure(repeats: int) -> dict[str, dict[str, float]]:
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in COMMANDS}
    for _ in range(repeats):  # interleaved, so drift hits every command alike
        for name, args in COMMANDS.items():
            runs[name].append(time_once(args))
    return {
        name: {
            "wall_median_s": statistics.median(w for w, _ in times),
            "wall_min_s": min(w for w, _ in times),
            "cpu_median_s": statistics.median(c for _, c in times),
        }
        for name, times in runs.items()
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    before = contention()
    results = measure(args.repeats)
    met = results["tpo --help"]["wall_median_s"] < TARGET_S
    rows = [
        [name, r["wall_median_s"], r["wall_min_s"], r["cpu_median_s"]]
        for name, r in results.items()
    ]
    table = show_table(
        f"CLI start-up, {args.repeats} runs each (target: tpo --help < {TARGET_S:g} s: "
        f"{verdict(met)})",
        ["command", "wall median s", "wall min s", "CPU median s"],
        rows,
    )
    payload = {
        "results": results,
        "target_met": met,
        "repeats": args.repeats,
        "contention": {"before": before, "after": contention()},
        "table": table,
    }
    path = write_json("cli_startup", payload, args.out)
    print(f"wrote {path}")
    return payload


if __name__ == "__main__":
    main()
