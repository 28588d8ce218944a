"""Benchmark 3: dataset throughput of ``tpo eval`` against vLLM at several concurrencies.

Runs ``tpo eval`` (the CLI, as a subprocess) on 32 prompts at concurrency 1, 2, 4, 8, 16
against the vLLM servers of benchmark 2 (started here, or reused with --policy-url and
--reward-url), and reports prompts per minute and the server's generated tokens/s. Beside each
level: the server's decode ceiling at the same concurrency, from a plain load of equal
requests (the same n and max_tokens per request, the same request count per prompt, no
reward and no waiting between steps, ``ignore_eos`` so every sequence is max_tokens long).
``--in-process`` drives the graph with ``abatch(max_concurrency=K)`` instead of the CLI.

    python -m benchmarks.dataset_throughput [--prompts 32] [--concurrency 1 2 4 8 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openai import AsyncOpenAI

from benchmarks.chains import Counters, Settings, settled_counters, tpo_graph
from benchmarks.common import (
    RESULTS_DIR,
    contention,
    show_table,
    stop_on_signals,
    tpo_arguments,
    write_json,
)
from benchmarks.prompts import prompts
from benchmarks.servers import BenchServers, add_server_args, running_servers

DOCS_IMG = Path(__file__).resolve().parents[1] / "docs" / "img"
SECONDS_RE = re.compile(r"(\d+) new this run, ([\d.]+)s\)")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    tpo_arguments(parser, max_tokens=16)
    parser.add_argument(
        "--in-process", action="store_true", help="graph.abatch instead of the tpo eval CLI"
    )
    parser.add_argument("--no-ceiling", action="store_true", help="skip the plain-load ceiling")
    parser.add_argument("--out", type=Path)
    add_server_args(parser)
    return parser.parse_args()


@dataclass
class Level:
    """One concurrency level: the eval run and the ceiling load."""

    concurrency: int
    prompts: int
    seconds: float  # the run itself (the CLI's own count, without its start-up)
    process_s: float  # the whole subprocess, start-up included
    counters: Counters
    cold_prefix_cache: bool = False  # the policy server's prefix cache was emptied first
    ceiling_tok_s: float | None = None

    @property
    def prompts_per_min(self) -> float:
        return 60 * self.prompts / self.seconds

    @property
    def tok_s(self) -> float:
        return self.counters.generation_tokens / self.seconds

    def as_dict(self) -> dict[str, Any]:
        return {
            "concurrency": self.concurrency,
            "prompts": self.prompts,
            "seconds": self.seconds,
            "process_s": self.process_s,
            "prompts_per_min": self.prompts_per_min,
            "generated_tokens_per_s": self.tok_s,
            "ceiling_generated_tokens_per_s": self.ceiling_tok_s,
            "generation_tokens": self.counters.generation_tokens,
            "prompt_tokens": self.counters.prompt_tokens,
            "chat_requests": self.counters.chat_requests,
            "classify_requests": self.counters.classify_requests,
        }


def eval_command(
    servers: BenchServers, args: argparse.Namespace, data: Path, out: Path, k: int
) -> list[str]:
    tpo = Path(sys.executable).with_name("tpo")
    head = [str(tpo)] if tpo.exists() else [sys.executable, "-m", "langgraph_tpo.cli"]
    return [
        *head, "eval", str(data), "--out", str(out), "--concurrency", str(k),
        "--policy-url", servers.policy_openai_url, "--policy-model", servers.policy_model,
        "--reward-url", servers.reward_url, "--reward-model", servers.reward_model,
        "--reward-path", str(servers.reward_tokenizer_path),
        "-n", str(args.num_samples), "-d", str(args.max_iterations),
        "--max-tokens", str(args.max_tokens), "--seed", str(args.seed),
    ]  # fmt: skip


def run_cli(cmd: list[str], expected: int) -> tuple[float, float]:
    """Run ``tpo eval``; returns (its own run seconds, the whole process's seconds)."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    process_s = time.perf_counter() - start
    match = SECONDS_RE.search(proc.stderr)
    if proc.returncode != 0 or match is None or int(match.group(1)) != expected:
        raise RuntimeError(f"tpo eval failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return float(match.group(2)), process_s


def run_in_process(servers: BenchServers, args: argparse.Namespace, k: int) -> float:
    settings = Settings(
        n=args.num_samples, d=args.max_iterations, max_tokens=args.max_tokens, seed=args.seed
    )
    graph = tpo_graph(servers, settings)
    inputs = [{"query": q} for q in prompts(args.prompts)]
    start = time.perf_counter()
    asyncio.run(graph.abatch(inputs, config={"max_concurrency": k}))
    return time.perf_counter() - start


def run_level(servers: BenchServers, args: argparse.Namespace, tmp: Path, k: int) -> Level:
    data = tmp / "prompts.jsonl"
    data.write_text(
        "".join(json.dumps({"id": i, "prompt": p}) + "\n" for i, p in enumerate(prompts(32)))
    )
    out = tmp / f"results-c{k}.jsonl"
    cold = servers.reset_prefix_cache()  # every level starts cold: the levels repeat prompts
    before = settled_counters(servers)
    if args.in_process:
        seconds = process_s = run_in_process(servers, args, k)
    else:
        cmd = eval_command(servers, args, data, out, k) + ["--limit", str(args.prompts)]
        seconds, process_s = run_cli(cmd, args.prompts)
    counters = settled_counters(servers) - before
    return Level(k, args.prompts, seconds, process_s, counters, cold)


async def plain_load(servers: BenchServers, args: argparse.Namespace, k: int) -> float:
    """Generated tokens/s of K workers sending TPO-shaped requests back to back."""
    client = AsyncOpenAI(base_url=servers.policy_openai_url, api_key="EMPTY", max_retries=0)
    n, d = args.num_samples, args.max_iterations
    shape = [n] + [1, 1, n] * d  # sample, then loss, gradient, update per iteration
    queue: asyncio.Queue[str] = asyncio.Queue()
    for query in prompts(max(k, 4)):
        queue.put_nowait(query)

    async def worker() -> None:
        while not queue.empty():
            query = queue.get_nowait()
            for i, count in enumerate(shape):
                await client.chat.completions.create(
                    model=servers.policy_model,
                    messages=[{"role": "user", "content": query}],
                    n=count,
                    max_tokens=args.max_tokens,
                    temperature=0.7,
                    top_p=0.95,
                    seed=args.seed + i,
                    extra_body={"ignore_eos": True},
                )

    before = await asyncio.to_thread(settled_counters, servers)
    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(k)))
    wall = time.perf_counter() - start
    after = await asyncio.to_thread(settled_counters, servers)
    await client.close()
    return (after - before).generation_tokens / wall


def plot(levels: list[Level], paths: list[Path], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = [lv.concurrency for lv in levels]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(ks, [lv.prompts_per_min for lv in levels], "o-", color="tab:blue")
    left.set_ylabel("prompts / minute")
    right.plot(ks, [lv.tok_s for lv in levels], "s-", color="tab:orange", label="tpo eval")
    if all(lv.ceiling_tok_s is not None for lv in levels):
        ceiling = [lv.ceiling_tok_s for lv in levels]
        right.plot(ks, ceiling, "^--", color="tab:gray", label="plain load (ceiling)")
    right.set_ylabel("server generated tokens / s")
    right.legend(loc="best")
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.set_xlabel("concurrency (prompts in flight)")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
    plt.close(fig)


def measure_all(servers: BenchServers, args: argparse.Namespace) -> list[Level]:
    levels = []
    tmp = Path(tempfile.mkdtemp(prefix="tpo-throughput-"))
    try:
        for k in args.concurrency:
            level = run_level(servers, args, tmp, k)
            if not args.no_ceiling:
                servers.reset_prefix_cache()
                level.ceiling_tok_s = asyncio.run(plain_load(servers, args, k))
            print(
                f"  c={k}: {level.seconds:.1f}s, {level.prompts_per_min:.2f} prompts/min, "
                f"{level.tok_s:.1f} tok/s (ceiling {level.ceiling_tok_s})",
                file=sys.stderr,
            )
            levels.append(level)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return levels


def main() -> None:
    args = parse_args()
    stop_on_signals()
    before = contention()
    with running_servers(args) as servers:
        levels = measure_all(servers, args)
        started_here = servers.started_here
    after = contention()
    rows = [
        [lv.concurrency, lv.seconds, lv.process_s, lv.prompts_per_min, lv.tok_s,
         lv.ceiling_tok_s, lv.tok_s / lv.ceiling_tok_s if lv.ceiling_tok_s else None]
        for lv in levels
    ]  # fmt: skip
    driver = "graph.abatch in-process" if args.in_process else "tpo eval CLI"
    title = (
        f"Dataset throughput ({driver}): {args.prompts} prompts, N={args.num_samples}, "
        f"D={args.max_iterations}, max_tokens={args.max_tokens}"
    )
    markdown = show_table(
        title,
        ["conc", "run s", "process s", "prompts/min", "gen tok/s", "ceiling tok/s", "of ceiling"],
        rows,
    )
    images = (
        [args.out.with_suffix(".png")]
        if args.out
        else [RESULTS_DIR / "dataset_throughput.png", DOCS_IMG / "dataset_throughput.png"]
    )
    plot(levels, images, title + "\nvLLM CPU, SmolLM2-135M on 1 pinned core")
    print(f"contention: before {before}, after {after}")
    settings = {
        "prompts": args.prompts, "n": args.num_samples, "d": args.max_iterations,
        "max_tokens": args.max_tokens, "seed": args.seed, "driver": driver,
        "servers_started_here": started_here,
        "cold_prefix_cache": all(lv.cold_prefix_cache for lv in levels),
    }  # fmt: skip
    write_json(
        "dataset_throughput",
        {
            "settings": settings,
            "contention": {"before": before, "after": after},
            "levels": [lv.as_dict() for lv in levels],
            "plots": [str(p) for p in images],
            "markdown": markdown,
        },
        args.out,
    )


if __name__ == "__main__":
    main()
