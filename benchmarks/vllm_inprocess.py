"""Benchmark: in-process vLLM (``--policy-engine vllm``), one TPO run vs 4 at once on one engine.

One ``VLLMChatModel`` (vLLM's async engine in this process, SmolLM2 on CPU) and the tiny
reward model in-process. Each round times the prompts one after another (each run alone
on the engine) and then all at once (``asyncio.gather``: their requests meet in vLLM's
scheduler); the prefix cache is emptied before each timed phase. Batching should put
4 runs at once well under 4x the time of one run. Counts come from the engine's own
Prometheus metrics (requests, sequences, generated tokens).

vLLM and langgraph-tpo need one venv: run from the dev venv and the script builds the
langgraph-tpo + vLLM CPU venv (``ensure_tpo_vllm_venv``) and re-runs itself there.

    python -m benchmarks.vllm_inprocess [--runs 4] [--max-tokens 48] [-n 5] [-d 2] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from testsupport.servers import DEFAULT_ENV
from testsupport.vllm_env import CPU_ENGINE_ARGS

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 2.0  # 4 runs at once vs one run alone: "well under 4x"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4, help="runs at once (and prompts)")
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("-n", "--num-samples", type=int, default=5)
    parser.add_argument("-d", "--max-iterations", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--policy-path", help="model for vLLM (default: SmolLM2 HF dir)")
    parser.add_argument("--reward-path", help="reward model dir (default: the tiny test RM)")
    parser.add_argument("--engine-args", default=json.dumps(CPU_ENGINE_ARGS))
    parser.add_argument("--out", type=Path)
    return parser.parse_args()


def reexec_in_vllm_venv(args: argparse.Namespace) -> None:
    """From a venv without vllm: build the models and the vLLM venv, and run there."""
    from testsupport import build_smollm2_hf_dir, build_tiny_reward_model
    from testsupport.vllm_env import ensure_tpo_vllm_venv

    python = str(ensure_tpo_vllm_venv())
    argv = [python, "-m", "benchmarks.vllm_inprocess", *sys.argv[1:]]
    if not args.policy_path:
        argv += ["--policy-path", str(build_smollm2_hf_dir())]
    if not args.reward_path:
        argv += ["--reward-path", str(build_tiny_reward_model())]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env = {**DEFAULT_ENV, **env}
    os.chdir(ROOT)
    os.execve(python, argv, env)


def engine_counts() -> dict[str, float]:
    from prometheus_client import REGISTRY, generate_latest

    from testsupport.servers import parse_prometheus

    metrics = parse_prometheus(generate_latest(REGISTRY).decode())
    return {
        "requests": metrics.get("vllm:request_params_n_count", 0.0),
        "sequences": metrics.get("vllm:request_params_n_sum", 0.0),
        "generation_tokens": metrics.get("vllm:generation_tokens_total", 0.0),
        "prompt_tokens": metrics.get("vllm:prompt_tokens_total", 0.0),
    }


async def timed(engine: Any, phase: Any) -> dict[str, Any]:
    """Wall time of ``phase()`` on an empty prefix cache, and what the engine did."""
    await asyncio.wrap_future(engine.submit(engine.llm.reset_prefix_cache()))
    before = engine_counts()
    started = time.perf_counter()
    await phase()
    wall = time.perf_counter() - started
    await asyncio.sleep(0.5)  # the output handler records the last requests' stats
    after = engine_counts()
    return {"wall_s": wall, **{k: int(after[k] - before[k]) for k in after}}


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.prompts import PROMPTS
    from langgraph_tpo import TPOConfig, create_tpo_graph
    from langgraph_tpo.backends.factory import BackendSettings, build_models
    from langgraph_tpo.backends.inprocess.vllm_inprocess import shutdown_engines

    settings = BackendSettings(
        policy_engine="vllm",
        policy_path=args.policy_path,
        engine_args=args.engine_args,
        reward_path=args.reward_path,
    )
    policy, reward = build_models(settings)
    started = time.perf_counter()
    engine = await asyncio.to_thread(policy.engine)
    load_s = time.perf_counter() - started
    config = TPOConfig(
        num_samples=args.num_samples,
        max_iterations=args.max_iterations,
        max_tokens=args.max_tokens,
        seed=args.seed,
    )
    graph = create_tpo_graph(policy, reward, config)
    prompts = PROMPTS[: args.runs]

    async def one_after_another() -> None:
        for prompt in prompts:
            await graph.ainvoke({"query": prompt})

    async def all_at_once() -> None:
        await asyncio.gather(*(graph.ainvoke({"query": p}) for p in prompts))

    await graph.ainvoke({"query": PROMPTS[-1]})  # warm-up, not timed
    rounds = []
    for index in range(args.rounds):
        order = ("alone", "together") if index % 2 == 0 else ("together", "alone")
        phases = {"alone": one_after_another, "together": all_at_once}
        rounds.append({name: await timed(engine, phases[name]) for name in order})
        print(f"round {index + 1}: {json.dumps(rounds[-1])}", file=sys.stderr, flush=True)
    shutdown_engines()
    return {"load_s": load_s, "rounds": rounds}


def summarize(args: argparse.Namespace, measured: dict[str, Any]) -> dict[str, Any]:
    rounds = measured["rounds"]
    sequential = statistics.median(r["alone"]["wall_s"] for r in rounds)
    together = statistics.median(r["together"]["wall_s"] for r in rounds)
    one_run = sequential / args.runs
    ratio = together / one_run
    return {
        "one_run_s": one_run,
        "sequential_s": sequential,
        "together_s": together,
        "ratio_together_vs_one": ratio,
        "speedup_vs_sequential": sequential / together,
        "target_ratio": TARGET_RATIO,
        "met": ratio < TARGET_RATIO,
    }


def main() -> None:
    args = parse_args()
    if importlib.util.find_spec("vllm") is None:
        reexec_in_vllm_venv(args)
    from benchmarks.common import contention, show_table, stop_on_signals, verdict, write_json

    stop_on_signals()
    before = contention()
    measured = asyncio.run(measure(args))
    summary = summarize(args, measured)
    rows = []
    for index, r in enumerate(measured["rounds"], 1):
        for name, label in (("alone", "one after another"), ("together", "all at once")):
            p = r[name]
            tok_s = p["generation_tokens"] / p["wall_s"]
            rows.append(
                [index, label, p["wall_s"], p["requests"], p["sequences"], p["generation_tokens"],
                 tok_s]
            )  # fmt: skip
    title = (
        f"In-process vLLM: {args.runs} TPO runs one after another vs at once "
        f"(N={args.num_samples}, D={args.max_iterations}, max_tokens={args.max_tokens})"
    )
    columns = ["round", "runs", "wall s", "requests", "sequences", "gen tokens", "gen tok/s"]
    table = show_table(title, columns, rows)
    ratio = summary["ratio_together_vs_one"]
    print(
        f"one run {summary['one_run_s']:.1f} s; {args.runs} at once {summary['together_s']:.1f} s "
        f"= {ratio:.2f}x one run (target < {TARGET_RATIO}x: {verdict(summary['met'])}); "
        f"{summary['speedup_vs_sequential']:.2f}x faster than one after another; "
        f"engine load {measured['load_s']:.0f} s"
    )
    import vllm

    payload = {
        "vllm": vllm.__version__,
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "contention_before": before,
        "contention_after": contention(),
        **measured,
        "summary": summary,
        "table_md": table,
    }
    write_json("vllm_inprocess", payload, args.out)


if __name__ == "__main__":  # vLLM spawns its engine core: the entry point must be guarded
    main()
