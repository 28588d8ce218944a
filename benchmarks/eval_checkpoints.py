"""Benchmark 11: what checkpointing costs ``tpo eval`` (issue 24: within 5% of no checkpoints).

Runs the ``tpo eval`` CLI over the same prompts against one vLLM CPU server pair (started
here, or given with --policy-url/--reward-url), alternating ``--checkpoints auto`` (SQLite
beside the results) and ``--checkpoints off`` in ABBA order, so the machine's noise hits
both alike. Every run starts with the policy server's prefix cache emptied and writes a
fresh results file. Prints one row per run and the medians, with the overhead in percent.

    python -m benchmarks.eval_checkpoints [--prompts 16] [--rounds 3] [-c 8] [-n 3 -d 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.chains import settled_counters
from benchmarks.common import show_table, watched_run, write_json
from benchmarks.dataset_throughput import eval_command, run_cli
from benchmarks.prompts import prompts
from benchmarks.servers import BenchServers, add_server_args, running_servers

MODES = ("auto", "off")
TARGET_PERCENT = 5.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="ABBA pairs of runs")
    parser.add_argument("-c", "--concurrency", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("-n", "--num-samples", type=int, default=3)
    parser.add_argument("-d", "--max-iterations", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--out", type=Path)
    add_server_args(parser)
    return parser.parse_args()


def write_data(path: Path, count: int) -> Path:
    """``count`` benchmark prompts as JSONL with ids."""
    import json

    rows = [{"id": i, "prompt": p} for i, p in enumerate(prompts(count))]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def order(rounds: int) -> list[str]:
    """ABBA ABBA ...: each mode as often first as second."""
    pairs = [MODES if r % 2 == 0 else MODES[::-1] for r in range(rounds)]
    return [mode for pair in pairs for mode in pair]


def one_run(
    servers: BenchServers, args: argparse.Namespace, data: Path, tmp: Path, i: int, mode: str
) -> dict[str, Any]:
    """One ``tpo eval`` over every prompt with ``--checkpoints mode``, from a cold cache."""
    out = tmp / f"results-{i}-{mode}.jsonl"
    servers.reset_prefix_cache()
    before = settled_counters(servers)
    cmd = eval_command(servers, args, data, out, args.concurrency)
    seconds, process_s = run_cli([*cmd, "--checkpoints", mode], args.prompts)
    counters = settled_counters(servers) - before
    return {
        "run": i + 1,
        "checkpoints": mode,
        "seconds": seconds,
        "process_s": process_s,
        "prompts_per_min": 60 * args.prompts / seconds,
        "generated_tokens_per_s": counters.generation_tokens / seconds,
        "generation_tokens": counters.generation_tokens,
    }


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median seconds per mode, and checkpointing's overhead against ``off`` in percent."""
    median = {
        m: statistics.median(r["seconds"] for r in runs if r["checkpoints"] == m) for m in MODES
    }
    overhead = 100 * (median["auto"] / median["off"] - 1)
    return {"median_seconds": median, "overhead_percent": overhead}


def main() -> None:
    args = parse_args()
    with (
        watched_run() as seen,
        running_servers(args) as servers,
        tempfile.TemporaryDirectory() as d,
    ):
        tmp = Path(d)
        data = write_data(tmp / "prompts.jsonl", args.prompts)
        runs = [one_run(servers, args, data, tmp, i, m) for i, m in enumerate(order(args.rounds))]
    result = summary(runs)
    title = (
        f"tpo eval with and without checkpoints ({args.prompts} prompts, N={args.num_samples}, "
        f"D={args.max_iterations}, max_tokens {args.max_tokens}, concurrency {args.concurrency})"
    )
    columns = ["run", "checkpoints", "seconds", "prompts/min", "generated tok/s", "process s"]
    rows = [
        [r["run"], r["checkpoints"], r["seconds"], r["prompts_per_min"],
         r["generated_tokens_per_s"], r["process_s"]]
        for r in runs
    ]  # fmt: skip
    show_table(title, columns, rows)
    med = result["median_seconds"]
    met = "met" if result["overhead_percent"] <= TARGET_PERCENT else "MISSED"
    print(
        f"median seconds: auto {med['auto']:.1f}, off {med['off']:.1f}; overhead "
        f"{result['overhead_percent']:+.1f}% (target <= {TARGET_PERCENT:.0f}%: {met})"
    )
    write_json(
        "eval_checkpoints",
        {"args": {k: str(v) for k, v in vars(args).items()}, "runs": runs, **result, **seen},
        args.out,
    )


if __name__ == "__main__":
    main()
