"""Benchmark 2: the TPO graph end to end against vLLM, versus the minimal direct chain.

Starts a vLLM CPU policy server (SmolLM2-135M-Instruct) and a pooling reward server (tiny RM)
the way the integration tests do (or reuses running ones: --policy-url/--reward-url), then
runs the same prompts through the TPO graph (``create_tpo_graph`` with ``vllm_chat_model`` +
``VLLMServerReward``, ``abatch`` with ``max_concurrency``) and through the direct chain
(``openai.AsyncOpenAI`` + httpx, short prompts, the same requests), interleaved A, B, B, A.
Reports wall time, requests, prompt and generated tokens from the servers' ``/metrics``.

The direct chain sends the graph's own prompts by default (``--direct-prompts same``): the
same requests with the same seeds give the same generated text, so the time ratio is the
graph's orchestration cost alone. ``--direct-prompts short`` uses benchmark 5's short prompts.

    python -m benchmarks.vllm_e2e [--prompts 16] [--max-tokens 128] [--concurrency 1 8]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from benchmarks import chains
from benchmarks.chains import RunStats
from benchmarks.common import (
    show_table,
    tpo_arguments,
    verdict,
    watched_run,
    write_json,
)
from benchmarks.prompts import prompts
from benchmarks.servers import BenchServers, add_server_args, running_servers

VARIANTS = ("tpo", "direct")
TIME_TARGET = 1.05


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=16, help="how many of the fixed prompts")
    tpo_arguments(parser, max_tokens=128)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="rounds per concurrency, A,B then B,A ...: each on its own chunk of the prompts "
        "when every chunk still has >= concurrency prompts, else on all of them (new seed)",
    )
    parser.add_argument(
        "--direct-prompts",
        choices=["same", "short"],
        default="same",
        help="same: the direct chain sends the graph's own prompts (same requests, same seeds, "
        "so the same generated text); short: the minimal short prompts of benchmark 5",
    )
    parser.add_argument("--out", type=Path)
    add_server_args(parser)
    return parser.parse_args()


async def run_level(
    servers: BenchServers,
    runners: dict[str, Any],
    queries: list[str],
    concurrency: int,
    args: argparse.Namespace,
) -> dict[str, RunStats]:
    """Both variants at one concurrency, interleaved; both see the same prompts and seeds."""
    inputs = chains.round_inputs(queries, args.rounds, concurrency)
    merged: dict[str, RunStats] = {}
    for r, variant in chains.interleaved(VARIANTS, args.rounds):
        seed = args.seed + 1000 * r
        stats = await chains.measure(
            servers, variant, runners[variant], inputs[r], concurrency, seed
        )
        print(
            f"  c={concurrency} round {r} {variant}: {stats.wall_s:.1f}s, "
            f"{stats.counters.generation_tokens:.0f} generated tokens"
            f"{', cold prefix cache' if stats.cold_prefix_cache else ''}",
            file=sys.stderr,
        )
        merged[variant] = merged[variant].merged(stats) if variant in merged else stats
    return merged


async def run_all(servers: BenchServers, args: argparse.Namespace) -> list[dict[str, RunStats]]:
    settings = chains.Settings(
        n=args.num_samples, d=args.max_iterations, max_tokens=args.max_tokens, seed=args.seed
    )
    graph = chains.tpo_graph(servers, settings)
    chain = chains.SamePromptChain if args.direct_prompts == "same" else chains.DirectChain
    direct = chain(servers, settings)
    try:
        await chains.warm_up(graph, direct)
        runners = {"tpo": chains.tpo_runner(graph), "direct": direct.run_all}
        queries = prompts(args.prompts)
        return [await run_level(servers, runners, queries, c, args) for c in args.concurrency]
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


RUN_COLUMNS = [
    "conc", "variant", "prompts", "wall s", "requests", "chat", "classify", "sequences",
    "prompt tok", "prefill tok", "gen tok", "ms / gen tok", "gen tok/s", "best score",
]  # fmt: skip
RATIO_COLUMNS = ["conc", "time", "ms / gen token", "requests", "gen tokens", "prompt tokens"]


def run_row(s: RunStats) -> list[Any]:
    c = s.counters
    return [
        s.concurrency, s.variant, s.prompts, s.wall_s, s.requests, int(c.chat_requests),
        int(c.classify_requests), int(c.sequences), int(c.prompt_tokens), int(s.prefill_tokens),
        int(c.generation_tokens), s.ms_per_generated_token, s.generated_tokens_per_s,
        s.mean_best_score,
    ]  # fmt: skip


def ratio_row(concurrency: int, r: dict[str, float], met: dict[str, bool]) -> list[Any]:
    def cell(key: str) -> str:
        return f"{r[key]:.3f} {verdict(met[key])}"

    return [
        concurrency,
        cell("time"),
        cell("ms_per_generated_token"),
        cell("requests"),
        cell("generation_tokens"),
        r["prompt_tokens"],
    ]


def report(levels: list[dict[str, RunStats]], args: argparse.Namespace) -> dict[str, Any]:
    rows, ratio_rows, summary = [], [], []
    for level in levels:
        rows += [run_row(level[v]) for v in VARIANTS]
        r = ratios(level)
        met = targets(r)
        conc = level["tpo"].concurrency
        ratio_rows.append(ratio_row(conc, r, met))
        summary.append(
            {
                "concurrency": conc,
                "runs": {v: level[v].as_dict() for v in VARIANTS},
                "ratios": r,
                "targets_met": met,
            }
        )
    title = (
        f"vLLM end to end: {args.prompts} prompts, N={args.num_samples}, D={args.max_iterations}, "
        f"max_tokens={args.max_tokens}"
    )
    runs_md = show_table(title, RUN_COLUMNS, rows)
    ratios_md = show_table(
        "TPO graph / direct chain (targets: time <= 1.05; requests, gen tokens <= 1)",
        RATIO_COLUMNS,
        ratio_rows,
    )
    return {"levels": summary, "markdown": runs_md + "\n\n" + ratios_md}


def main() -> None:
    args = parse_args()
    with watched_run() as load:
        with running_servers(args) as servers:
            levels = asyncio.run(run_all(servers, args))
            started_here = servers.started_here
        result = report(levels, args)
    write_json(
        "vllm_e2e",
        {
            "settings": {
                "prompts": args.prompts, "n": args.num_samples, "d": args.max_iterations,
                "max_tokens": args.max_tokens, "seed": args.seed, "rounds": args.rounds,
                "concurrency": args.concurrency, "servers_started_here": started_here,
                "direct_prompts": args.direct_prompts,
            },
            "contention": load,
            **result,
        },
        args.out,
    )  # fmt: skip


if __name__ == "__main__":
    main()
