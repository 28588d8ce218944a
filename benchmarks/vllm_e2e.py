"""Benchmark 2: the TPO graph end to end against vLLM, versus the minimal direct chain.

Starts a vLLM CPU policy server (SmolLM2-135M-Instruct) and a pooling reward server (tiny RM)
the way the integration tests do (or reuses running ones: --policy-url/--reward-url), then
runs the same prompts through the TPO graph (``create_tpo_graph`` with ``vllm_chat_model`` +
``VLLMServerReward``, ``abatch`` with ``max_concurrency``) and through the direct chain
(``openai.AsyncOpenAI`` + httpx, short prompts, the same requests), interleaved A, B, B, A.
Reports wall time, requests, prompt and generated tokens from the servers' ``/metrics``.

    python -m benchmarks.vllm_e2e [--prompts 8] [--max-tokens 32] [--concurrency 1 8]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks.chains import (
    DirectChain,
    RunStats,
    Settings,
    interleaved,
    measure,
    split,
    tpo_graph,
    tpo_runner,
)
from benchmarks.common import contention, print_table, verdict, write_json
from benchmarks.prompts import prompts
from benchmarks.servers import BenchServers, add_server_args, running_servers

VARIANTS = ("tpo", "direct")
TIME_TARGET = 1.05
WARMUP_PROMPT = "Say hello."


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=8, help="how many of the fixed prompts")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("-n", "--num-samples", type=int, default=5)
    parser.add_argument("-d", "--max-iterations", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="split the prompts into this many chunks, run A,B on the first, B,A on the next...",
    )
    parser.add_argument("--out", type=Path)
    add_server_args(parser)
    return parser.parse_args()


async def warm_up(graph: Any, direct: DirectChain) -> None:
    """First requests (and the reward tokenizers) outside the timed runs."""
    await graph.ainvoke(
        {"query": WARMUP_PROMPT}, context={"max_tokens": 4, "num_samples": 2, "max_iterations": 1}
    )
    small = DirectChain(direct.servers, replace(direct.settings, max_tokens=4, n=2, d=1))
    try:
        await small.run(WARMUP_PROMPT)
    finally:
        await small.aclose()


async def run_level(
    servers: BenchServers,
    runners: dict[str, Any],
    queries: list[str],
    concurrency: int,
    rounds: int,
) -> dict[str, RunStats]:
    """Both variants at one concurrency, interleaved; each variant sees every prompt once."""
    chunks = split(queries, rounds)
    merged: dict[str, RunStats] = {}
    for r, variant in interleaved(VARIANTS, rounds):
        stats = await measure(servers, variant, runners[variant], chunks[r], concurrency)
        print(
            f"  c={concurrency} round {r} {variant}: {stats.wall_s:.1f}s, "
            f"{stats.counters.generation_tokens:.0f} generated tokens",
            file=sys.stderr,
        )
        merged[variant] = merged[variant].merged(stats) if variant in merged else stats
    return merged


async def run_all(servers: BenchServers, args: argparse.Namespace) -> list[dict[str, RunStats]]:
    settings = Settings(
        n=args.num_samples, d=args.max_iterations, max_tokens=args.max_tokens, seed=args.seed
    )
    graph = tpo_graph(servers, settings)
    direct = DirectChain(servers, settings)
    try:
        await warm_up(graph, direct)
        runners = {"tpo": tpo_runner(graph), "direct": direct.run_all}
        queries = prompts(args.prompts)
        rounds = max(1, min(args.rounds, len(queries)))
        return [await run_level(servers, runners, queries, c, rounds) for c in args.concurrency]
    finally:
        await direct.aclose()


def ratios(level: dict[str, RunStats]) -> dict[str, float]:
    tpo, direct = level["tpo"], level["direct"]
    return {
        "time": tpo.wall_s / direct.wall_s,
        "ms_per_generated_token": tpo.ms_per_generated_token / direct.ms_per_generated_token,
        "requests": tpo.requests / max(direct.requests, 1),
        "generation_tokens": tpo.counters.generation_tokens
        / max(direct.counters.generation_tokens, 1.0),
        "prompt_tokens": tpo.counters.prompt_tokens / max(direct.counters.prompt_tokens, 1.0),
    }


def targets(r: dict[str, float]) -> dict[str, bool]:
    return {
        "time": r["time"] <= TIME_TARGET,
        "ms_per_generated_token": r["ms_per_generated_token"] <= TIME_TARGET,
        "requests": r["requests"] <= 1.0,
        "generation_tokens": r["generation_tokens"] <= 1.0,
    }


def report(levels: list[dict[str, RunStats]], args: argparse.Namespace) -> dict[str, Any]:
    rows, ratio_rows, summary = [], [], []
    for level in levels:
        for variant in VARIANTS:
            s = level[variant]
            c = s.counters
            rows.append([
                s.concurrency, variant, s.wall_s, s.requests, int(c.chat_requests),
                int(c.classify_requests), int(c.sequences), int(c.prompt_tokens),
                int(c.generation_tokens), s.ms_per_generated_token, s.generated_tokens_per_s,
            ])  # fmt: skip
        r = ratios(level)
        met = targets(r)
        conc = level["tpo"].concurrency
        ratio_rows.append([
            conc, f"{r['time']:.3f} {verdict(met['time'])}",
            f"{r['ms_per_generated_token']:.3f} {verdict(met['ms_per_generated_token'])}",
            f"{r['requests']:.3f} {verdict(met['requests'])}",
            f"{r['generation_tokens']:.3f} {verdict(met['generation_tokens'])}",
            r["prompt_tokens"],
        ])  # fmt: skip
        summary.append({
            "concurrency": conc,
            "runs": {v: level[v].as_dict() for v in VARIANTS},
            "ratios": r,
            "targets_met": met,
        })  # fmt: skip
    title = (
        f"vLLM end to end: {args.prompts} prompts, N={args.num_samples}, D={args.max_iterations}, "
        f"max_tokens={args.max_tokens}"
    )
    print_table(
        title,
        ["conc", "variant", "wall s", "requests", "chat", "classify", "sequences",
         "prompt tok", "gen tok", "ms/gen tok", "gen tok/s"],
        rows,
    )  # fmt: skip
    print_table(
        "TPO graph / direct chain (targets: time and ms/token <= 1.05, requests and gen tokens "
        "<= 1)",
        ["conc", "time", "ms / gen token", "requests", "gen tokens", "prompt tokens"],
        ratio_rows,
    )
    return {"levels": summary}


def main() -> None:
    args = parse_args()
    before = contention()
    with running_servers(args) as servers:
        levels = asyncio.run(run_all(servers, args))
        started_here = servers.started_here
    result = report(levels, args)
    after = contention()
    print(f"contention: before {before}, after {after}")
    path = write_json(
        "vllm_e2e",
        {
            "settings": {
                "prompts": args.prompts, "n": args.num_samples, "d": args.max_iterations,
                "max_tokens": args.max_tokens, "seed": args.seed, "rounds": args.rounds,
                "concurrency": args.concurrency, "servers_started_here": started_here,
            },
            "contention": {"before": before, "after": after},
            **result,
        },
        args.out,
    )  # fmt: skip
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
