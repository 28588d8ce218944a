"""Benchmark 5: prompt tokens per query, per built-in prompt set, and against the direct chain.

D=2, N=5, max_tokens=256 (responses and critiques of at most 256 tokens), 8 prompts at
concurrency 4, on the vLLM servers of benchmark 2 (started here, or reused with
--policy-url/--reward-url). For the TPO graph with each built-in prompt set (``paper``,
``compact``) and for the direct chain: prompt tokens per query as vLLM counts them
(``vllm:prompt_tokens_total``, once per generated sequence), the prompt tokens it computed
after its prefix cache (``vllm:prompt_tokens_by_source_total{source="local_compute"}``),
generated tokens, and chat requests per query (1 + 3D). Generated tokens/s is
``vllm:generation_tokens_total`` over wall time. Every policy request is also recorded (kind,
messages, n) and counted with the SmolLM2 tokenizer's chat template, to show where the tokens
go. The variants run interleaved (A, B, C on the first half of the prompts, C, B, A on the
second), each on an emptied prefix cache.

    python -m benchmarks.prompt_economy [--prompts 8] [--concurrency 4] [--max-tokens 256]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

from transformers import AutoTokenizer

from benchmarks.chains import (
    Call,
    DirectChain,
    RunStats,
    Settings,
    chat_prompt_tokens,
    interleaved,
    measure,
    recording_policy,
    round_inputs,
    tpo_graph,
    tpo_runner,
    warm_up,
)
from benchmarks.common import (
    show_table,
    tpo_arguments,
    verdict,
    watched_run,
    write_json,
)
from benchmarks.prompts import prompts
from benchmarks.servers import BenchServers, add_server_args, running_servers

VARIANTS = ("paper", "compact", "direct")
SETS = ("paper", "compact")
KINDS = ("sample", "loss", "gradient", "update")
PROMPT_TOKEN_TARGET = 10_000
COMPUTED_TOKEN_TARGET = 3_000  # the paper set: its whole context for compact's compute
TOK_S_TOLERANCE = 0.05
# The paper's reference implementation and a minimal chain, for scale (from the brief).
REFERENCE = {"reference implementation": (25_400, 82.5), "minimal chain (paper)": (12_800, 95.6)}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=4)
    tpo_arguments(parser, max_tokens=256)
    parser.add_argument("--rounds", type=int, default=2, help="A,B then B,A ... on prompt chunks")
    parser.add_argument("--out", type=Path)
    add_server_args(parser)
    return parser.parse_args()


async def run_variants(
    servers: BenchServers, args: argparse.Namespace
) -> tuple[dict[str, RunStats], dict[str, list[Call]]]:
    settings = Settings(
        n=args.num_samples, d=args.max_iterations, max_tokens=args.max_tokens, seed=args.seed
    )
    policies = {name: recording_policy(servers) for name in SETS}
    graphs = {
        name: tpo_graph(servers, replace(settings, prompts=name), policies[name]) for name in SETS
    }
    direct = DirectChain(servers, settings)
    runners = {name: tpo_runner(graphs[name]) for name in SETS} | {"direct": direct.run_all}
    inputs = round_inputs(prompts(args.prompts), args.rounds, args.concurrency)
    merged: dict[str, RunStats] = {}
    try:
        await warm_up(graphs["paper"], direct)
        for policy in policies.values():
            policy.calls.clear()
        for r, variant in interleaved(VARIANTS, args.rounds):
            seed = args.seed + 1000 * r
            stats = await measure(
                servers, variant, runners[variant], inputs[r], args.concurrency, seed
            )
            print(f"  round {r} {variant}: {stats.wall_s:.1f}s", file=sys.stderr)
            merged[variant] = merged[variant].merged(stats) if variant in merged else stats
    finally:
        await direct.aclose()
    return merged, {**{name: policies[name].calls for name in SETS}, "direct": direct.calls}


def breakdown(tokenizer: Any, calls: list[Call], queries: int) -> dict[str, dict[str, float]]:
    """Per call kind: calls, counted prompt tokens and generated tokens per query, mean
    prompt length."""
    count: dict[str, int] = defaultdict(int)
    tokens: dict[str, int] = defaultdict(int)
    lengths: dict[str, int] = defaultdict(int)
    generated: dict[str, int] = defaultdict(int)
    for call in calls:
        length = chat_prompt_tokens(tokenizer, call.messages)
        count[call.kind] += 1
        lengths[call.kind] += length
        tokens[call.kind] += length * call.n
        generated[call.kind] += call.completion_tokens
    total = sum(tokens.values()) or 1
    return {
        kind: {
            "calls_per_query": count[kind] / queries,
            "mean_prompt_len": lengths[kind] / max(count[kind], 1),
            "prompt_tokens_per_query": tokens[kind] / queries,
            "share": tokens[kind] / total,
            "generated_tokens_per_query": generated[kind] / queries,
        }
        for kind in KINDS
    }


def summary(stats: dict[str, RunStats], counted: dict[str, float]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for variant, s in stats.items():
        q = s.prompts
        out[variant] = {
            **s.as_dict(),
            "prompt_tokens_per_query": s.counters.prompt_tokens / q,
            "counted_prompt_tokens_per_query": counted[variant],
            "prefill_tokens_per_query": s.prefill_tokens / q,
            "computed_prompt_tokens_per_query": s.counters.computed_prompt_tokens / q,
            "generated_tokens_per_query": s.counters.generation_tokens / q,
            "requests_per_query": s.counters.chat_requests / q,
        }
    paper, direct = out["paper"], out["direct"]
    ratio = paper["generated_tokens_per_s"] / max(direct["generated_tokens_per_s"], 1e-9)
    out["targets"] = {
        "prompt_tokens_per_query": paper["prompt_tokens_per_query"],
        "prompt_tokens_met": paper["prompt_tokens_per_query"] <= PROMPT_TOKEN_TARGET,
        "computed_prompt_tokens_per_query": paper["computed_prompt_tokens_per_query"],
        "computed_prompt_tokens_met": (
            paper["computed_prompt_tokens_per_query"] <= COMPUTED_TOKEN_TARGET
        ),
        "tok_s_ratio": ratio,
        "tok_s_met": ratio >= 1 - TOK_S_TOLERANCE,
    }
    return out


def report(result: dict[str, Any], kinds: dict[str, Any], args: argparse.Namespace) -> str:
    rows: list[list[Any]] = []
    for variant in VARIANTS:
        r = result[variant]
        rows.append([
            variant, r["prompts"], r["wall_s"], r["requests_per_query"],
            r["prompt_tokens_per_query"], r["counted_prompt_tokens_per_query"],
            r["computed_prompt_tokens_per_query"], r["generated_tokens_per_query"],
            r["generated_tokens_per_s"], r["mean_best_score"],
        ])  # fmt: skip
    rows += [
        [name, "", "", "", tokens, "", "", "", tps, ""] for name, (tokens, tps) in REFERENCE.items()
    ]
    t = result["targets"]
    head = show_table(
        f"Prompt economy: N={args.num_samples}, D={args.max_iterations}, "
        f"max_tokens={args.max_tokens}, {args.prompts} prompts at concurrency {args.concurrency}",
        ["variant", "prompts", "wall s", "requests/query", "prompt tok/query (server)",
         "counted tok/query", "computed prompt tok/query", "gen tok/query", "gen tok/s",
         "mean best score"],
        rows,
    )  # fmt: skip
    kind_rows = [
        [variant, kind, k["calls_per_query"], k["mean_prompt_len"],
         k["prompt_tokens_per_query"], f"{100 * k['share']:.1f}%",
         k["generated_tokens_per_query"]]
        for variant in VARIANTS
        for kind, k in kinds[variant].items()
    ]  # fmt: skip
    body = show_table(
        "Prompt tokens per call kind (SmolLM2 chat template, x n) and generated tokens",
        ["variant", "kind", "calls/query", "mean prompt len", "prompt tok/query", "share",
         "gen tok/query"],
        kind_rows,
    )  # fmt: skip
    verdicts = (
        f"paper: computed prompt tokens/query {t['computed_prompt_tokens_per_query']:.0f} <= "
        f"{COMPUTED_TOKEN_TARGET}: {verdict(t['computed_prompt_tokens_met'])}; prompt "
        f"tokens/query {t['prompt_tokens_per_query']:.0f} <= {PROMPT_TOKEN_TARGET}: "
        f"{verdict(t['prompt_tokens_met'])}; gen tok/s paper/direct {t['tok_s_ratio']:.3f} >= "
        f"{1 - TOK_S_TOLERANCE}: {verdict(t['tok_s_met'])}"
    )
    print(verdicts)
    return head + "\n\n" + body + "\n\n" + verdicts


def main() -> None:
    args = parse_args()
    with watched_run() as load:
        with running_servers(args) as servers:
            stats, calls = asyncio.run(run_variants(servers, args))
            tokenizer_dir = servers.policy_tokenizer_path
            started_here = servers.started_here
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
        kinds = {v: breakdown(tokenizer, calls[v], stats[v].prompts) for v in VARIANTS}
        counted = {
            v: sum(k["prompt_tokens_per_query"] for k in kinds[v].values()) for v in VARIANTS
        }
        result = summary(stats, counted)
        markdown = report(result, kinds, args)
    settings = {
        "prompts": args.prompts, "concurrency": args.concurrency, "n": args.num_samples,
        "d": args.max_iterations, "max_tokens": args.max_tokens, "seed": args.seed,
        "rounds": args.rounds, "servers_started_here": started_here,
    }  # fmt: skip
    write_json(
        "prompt_economy",
        {
            "settings": settings,
            "contention": load,
            "reference": {k: {"prompt_tokens_per_query": a, "tok_s": b} for k, (a, b) in
                          REFERENCE.items()},
            "results": result,
            "per_kind": kinds,
            "markdown": markdown,
        },
        args.out,
    )  # fmt: skip


if __name__ == "__main__":
    main()
