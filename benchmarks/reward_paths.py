"""Benchmark 6: the two ways ``VLLMServerReward`` scores a step's N candidates.

* ``batched`` (a local tokenizer, ``--reward-path``): the chat template is rendered here and
  the N texts go to ``/classify`` in one request;
* ``messages`` (no local files): one ``/classify`` request with chat ``messages`` per
  candidate, the N sent concurrently; the server renders the template.

Each round scores one step (one query, N responses of different lengths, new text every
round so no cache helps) with both paths, interleaved (A, B, then B, A). Requests per step are
read from the server's own ``http_requests_total{handler="/classify"}``.

    python -m benchmarks.reward_paths [--rounds 30] [--num-samples 5] [--reward-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.common import contention, show_table, stop_on_signals, write_json
from langgraph_tpo.backends.servers.vllm_server import VLLMServerReward
from langgraph_tpo.reward import RewardPair
from testsupport import VLLMServer
from testsupport.models import build_tiny_reward_model, default_cache_dir
from testsupport.pair import READY_TIMEOUT_S, REWARD_CPUS, REWARD_NAME, fetch_metrics
from testsupport.vllm_env import ensure_vllm_venv

PATHS = ("batched", "messages")
CLASSIFY = {"handler": "/classify"}
QUERY = "How do I take care of a wooden dining table so it lasts for decades?"
SENTENCE = (
    "Wipe spills at once, keep it out of direct sun, use coasters and felt pads, and oil or "
    "wax the surface a few times a year. "
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="steps scored per path")
    parser.add_argument("--num-samples", "-n", type=int, default=5, help="N candidates a step")
    parser.add_argument("--reward-url", help="running pooling reward server (else start one)")
    parser.add_argument("--reward-model", default=REWARD_NAME, help="served reward model name")
    parser.add_argument("--reward-tokenizer", type=Path, help="its tokenizer directory")
    parser.add_argument("--reward-cpus", default=REWARD_CPUS, help="CPU binding if started")
    parser.add_argument("--out", type=Path, help="JSON output (default: benchmarks/results)")
    return parser.parse_args()


def step_pairs(round_index: int, n: int) -> list[RewardPair]:
    """One step's candidates: the same query, N responses of 1..N sentences, new each round."""
    conversation = [{"role": "user", "content": f"{QUERY} (round {round_index})"}]
    return [(conversation, f"Answer {i + 1}: " + SENTENCE * (i + 1)) for i in range(n)]


@contextlib.contextmanager
def reward_server(args: argparse.Namespace) -> Iterator[tuple[str, Path]]:
    """``(url, tokenizer dir)`` of the given server, or of a tiny-rm server started here."""
    tokenizer = args.reward_tokenizer or build_tiny_reward_model()
    if args.reward_url:
        yield args.reward_url, tokenizer
        return
    server = VLLMServer(
        ensure_vllm_venv(),
        tokenizer,
        REWARD_NAME,
        runner="pooling",
        log_path=default_cache_dir() / "logs" / f"vllm-reward-bench-{os.getpid()}.log",
        env={"VLLM_CPU_OMP_THREADS_BIND": args.reward_cpus},
    )
    try:
        server.start().wait_ready(READY_TIMEOUT_S)
        yield server.base_url, tokenizer
    finally:
        server.stop()


async def time_step(reward: VLLMServerReward, pairs: list[RewardPair]) -> float:
    started = time.perf_counter()
    await reward.ascore_batch(pairs)
    return (time.perf_counter() - started) * 1000


async def run_paths(url: str, tokenizer: Path, args: argparse.Namespace) -> dict[str, Any]:
    rewards = {
        "batched": VLLMServerReward(url, args.reward_model, tokenizer_path=tokenizer),
        "messages": VLLMServerReward(url, args.reward_model),
    }
    started = time.perf_counter()
    rewards["batched"].load_tokenizer()
    tokenizer_load_ms = (time.perf_counter() - started) * 1000
    for reward in rewards.values():  # warm-up: connections, server-side template compile
        await reward.ascore_batch(step_pairs(-1, args.num_samples))
    sent_before = {path: rewards[path].requests_sent for path in PATHS}
    times: dict[str, list[float]] = {p: [] for p in PATHS}
    requests: dict[str, float] = dict.fromkeys(PATHS, 0.0)
    for round_index in range(args.rounds):
        order = PATHS if round_index % 2 == 0 else PATHS[::-1]
        for path in order:
            before = fetch_metrics(url, CLASSIFY).get("http_requests_total", 0.0)
            times[path].append(
                await time_step(rewards[path], step_pairs(round_index, args.num_samples))
            )
            after = fetch_metrics(url, CLASSIFY).get("http_requests_total", 0.0)
            requests[path] += after - before
    return {
        "tokenizer_load_ms": tokenizer_load_ms,
        "paths": {
            path: {
                "requests_per_step": requests[path] / args.rounds,
                "client_requests_per_step": (rewards[path].requests_sent - sent_before[path])
                / args.rounds,
                "median_ms": statistics.median(times[path]),
                "p90_ms": statistics.quantiles(times[path], n=10)[-1]
                if len(times[path]) > 1
                else times[path][0],
                "min_ms": min(times[path]),
                "step_ms": times[path],
            }
            for path in PATHS
        },
    }


def report(result: dict[str, Any], args: argparse.Namespace) -> str:
    paths = result["paths"]
    base = paths["batched"]["median_ms"]
    rows = [
        [
            path,
            paths[path]["requests_per_step"],
            paths[path]["median_ms"],
            paths[path]["p90_ms"],
            paths[path]["min_ms"],
            paths[path]["median_ms"] / base,
        ]
        for path in PATHS
    ]
    columns = ["path", "requests / step", "median ms / step", "p90 ms", "min ms", "× batched"]
    title = f"Reward paths, N={args.num_samples}, {args.rounds} steps each, interleaved"
    table = show_table(title, columns, rows)
    load_ms = result["tokenizer_load_ms"]
    note = f"local tokenizer load (batched path, once per process): {load_ms:.0f} ms"
    print(note)
    return table + "\n\n" + note


def main() -> None:
    args = parse_args()
    stop_on_signals()
    before = contention()
    with reward_server(args) as (url, tokenizer):
        result = asyncio.run(run_paths(url, tokenizer, args))
    markdown = report(result, args)
    after = contention()
    print(f"contention: before {before}, after {after}")
    settings = {
        "rounds": args.rounds,
        "n": args.num_samples,
        "server_started_here": not args.reward_url,
    }
    write_json(
        "reward_paths",
        {"settings": settings, "contention": {"before": before, "after": after}, "results": result,
         "markdown": markdown},
        args.out,
    )  # fmt: skip


if __name__ == "__main__":
    main()
