"""Benchmark 11: what checkpointing costs ``tpo eval`` (issue 24: within 5% of no checkpoints).

Runs the ``tpo eval`` CLI over the same prompts against one vLLM CPU server pair (started
here, or given with --policy-url/--reward-url), alternating ``--checkpoints auto`` (SQLite
beside the results) and ``--checkpoints off`` in ABBA order, so the machine's noise hits
both alike. Every run starts with the policy server's prefix cache emptied and writes a
fresh results file. Each row has the run's wall time and the CPU seconds of the ``tpo eval``
process itself (where checkpointing's work happens; unlike wall time it barely moves when
other jobs load the machine). Prints one row per run, the medians and the overhead.

``--fakes`` runs the same CLI on the instant fake policy and reward of the test suite
instead (no server): what checkpointing costs per prompt when nothing else takes time.

    python -m benchmarks.eval_checkpoints [--prompts 16] [--rounds 3] [-c 8] [-n 3 -d 1]
    python -m benchmarks.eval_checkpoints --fakes --prompts 400 --rounds 3
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.chains import settled_counters
from benchmarks.common import abba_eval_parser, show_table, watched_run, write_json
from benchmarks.dataset_throughput import SECONDS_RE, eval_command
from benchmarks.prompts import prompts
from benchmarks.servers import BenchServers, add_server_args, running_servers
from testsupport.fake_backends import fake_backend_env

MODES = ("auto", "off")
TARGET_PERCENT = 5.0


def parse_args() -> argparse.Namespace:
    parser = abba_eval_parser(__doc__, rounds=3, rounds_help="ABBA pairs of runs")
    parser.add_argument("--fakes", action="store_true", help="instant fake models, no server")
    parser.add_argument("--out", type=Path)
    add_server_args(parser)
    return parser.parse_args()


def write_data(path: Path, count: int) -> Path:
    """``count`` benchmark prompts as JSONL with ids."""
    import json

    base = prompts(32)
    rows = [{"id": i, "prompt": f"{base[i % 32]} ({i})"} for i in range(count)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def order(rounds: int) -> list[str]:
    """ABBA ABBA ...: each mode as often first as second."""
    pairs = [MODES if r % 2 == 0 else MODES[::-1] for r in range(rounds)]
    return [mode for pair in pairs for mode in pair]


def fake_command(args: argparse.Namespace, data: Path, out: Path) -> list[str]:
    """``tpo eval`` on the instant fakes (the backends come from the environment)."""
    tpo = Path(sys.executable).with_name("tpo")
    head = [str(tpo)] if tpo.exists() else [sys.executable, "-m", "langgraph_tpo.cli"]
    return [
        *head, "eval", str(data), "--out", str(out), "--concurrency", str(args.concurrency),
        "-n", str(args.num_samples), "-d", str(args.max_iterations),
        "--max-tokens", str(args.max_tokens), "--seed", str(args.seed),
    ]  # fmt: skip


def timed_cli(cmd: list[str], expected: int, env: dict[str, str]) -> tuple[float, float]:
    """Run ``tpo eval``: (its own run seconds, the CPU seconds of the process)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    match = SECONDS_RE.search(proc.stderr)
    if proc.returncode != 0 or match is None or int(match.group(1)) != expected:
        raise RuntimeError(f"tpo eval failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return float(match.group(2)), cpu


def one_run(
    servers: BenchServers | None, args: argparse.Namespace, data: Path, tmp: Path, i: int,
    mode: str,
) -> dict[str, Any]:  # fmt: skip
    """One ``tpo eval`` over every prompt with ``--checkpoints mode``: on a server from a
    cold prefix cache, or on the instant fakes when ``servers`` is None."""
    out = tmp / f"results-{i}-{mode}.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TPO_")}
    tokens = 0.0
    if servers is None:
        cmd = fake_command(args, data, out)
        env.update(fake_backend_env())
    else:
        servers.reset_prefix_cache()
        before = settled_counters(servers)
        cmd = eval_command(servers, args, data, out, args.concurrency)
    seconds, cpu = timed_cli([*cmd, "--checkpoints", mode], args.prompts, env)
    if servers is not None:
        tokens = (settled_counters(servers) - before).generation_tokens
    return {
        "run": i + 1,
        "checkpoints": mode,
        "seconds": seconds,
        "client_cpu_s": cpu,
        "prompts_per_min": 60 * args.prompts / seconds,
        "generated_tokens_per_s": tokens / seconds,
        "generation_tokens": tokens,
    }


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians per mode (wall and client CPU seconds), checkpointing's overhead against
    ``off`` in percent of the wall time, and its extra client CPU in percent of it."""

    def median(mode: str, key: str) -> float:
        return statistics.median(r[key] for r in runs if r["checkpoints"] == mode)

    wall = {m: median(m, "seconds") for m in MODES}
    cpu = {m: median(m, "client_cpu_s") for m in MODES}
    return {
        "median_seconds": wall,
        "median_client_cpu_s": cpu,
        "overhead_percent": 100 * (wall["auto"] / wall["off"] - 1),
        "extra_cpu_percent_of_wall": 100 * (cpu["auto"] - cpu["off"]) / wall["off"],
    }


@contextlib.contextmanager
def maybe_servers(args: argparse.Namespace) -> Iterator[BenchServers | None]:
    """The server pair, or None with ``--fakes``."""
    if args.fakes:
        yield None
        return
    with running_servers(args) as servers:
        yield servers


def main() -> None:
    args = parse_args()
    with (
        watched_run() as seen,
        maybe_servers(args) as servers,
        tempfile.TemporaryDirectory() as d,
    ):
        tmp = Path(d)
        data = write_data(tmp / "prompts.jsonl", args.prompts)
        runs = [one_run(servers, args, data, tmp, i, m) for i, m in enumerate(order(args.rounds))]
    result = summary(runs)
    where = "instant fakes" if args.fakes else "vLLM CPU server pair"
    title = (
        f"tpo eval with and without checkpoints, {where} ({args.prompts} prompts, "
        f"N={args.num_samples}, "
        f"D={args.max_iterations}, max_tokens {args.max_tokens}, concurrency {args.concurrency})"
    )
    columns = ["run", "checkpoints", "seconds", "prompts/min", "generated tok/s", "client CPU s"]
    rows = [
        [r["run"], r["checkpoints"], r["seconds"], r["prompts_per_min"],
         r["generated_tokens_per_s"], r["client_cpu_s"]]
        for r in runs
    ]  # fmt: skip
    show_table(title, columns, rows)
    wall, cpu = result["median_seconds"], result["median_client_cpu_s"]
    extra = result["extra_cpu_percent_of_wall"]
    met = "met" if extra <= TARGET_PERCENT else "MISSED"
    print(
        f"median wall s: auto {wall['auto']:.1f}, off {wall['off']:.1f} "
        f"({result['overhead_percent']:+.1f}%); median client CPU s: auto {cpu['auto']:.2f}, "
        f"off {cpu['off']:.2f}; extra CPU = {extra:+.2f}% of the wall time without checkpoints "
        f"(target <= {TARGET_PERCENT:.0f}%: {met})"
    )
    write_json(
        "eval_checkpoints",
        {"args": {k: str(v) for k, v in vars(args).items()}, "runs": runs, **result, **seen},
        args.out,
    )


if __name__ == "__main__":
    main()
