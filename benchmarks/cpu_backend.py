"""Benchmark 4: the embedded CPU default (SmolLM2-135M in-process, judged by itself).

* model load time (``TransformersChatModel`` + ``JudgeReward`` from the backend factory, as
  ``tpo run`` builds them) and whether the policy and the judge share one loaded model;
* batched sampling of N=5 (one ``generate`` with ``num_return_sequences``) versus five
  sequential generations, at a fixed max_tokens, interleaved A, B, B, A (tokens/s);
* time and peak RSS of ``tpo run "How do I take care of a wooden table?"`` with its defaults,
  as a subprocess (``/usr/bin/time -v`` and psutil polling of the process tree).

    python -m benchmarks.cpu_backend [--max-tokens 64] [--repeats 2] [--skip-run]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from benchmarks.chains import interleaved
from benchmarks.common import contention, show_table, stop_on_signals, verdict, write_json
from langgraph_tpo.backends.factory import BackendSettings, build_policy, build_reward
from langgraph_tpo.backends.inprocess.causal_lm import (
    WEIGHTS_CACHE_ENV,
    clear_model_cache,
    dequantized_cache_dir,
    load_causal_lm,
    load_model,
)
from langgraph_tpo.prompts import COMPACT
from langgraph_tpo.prompts.render import Quoted, update_messages

PROMPT = "How do I take care of a wooden table?"
# An update step's prompt at a typical size (~330 tokens): TPO samples N rewrites of it.
CHOSEN = (
    "Dust the table weekly with a soft, dry cloth. Wipe spills at once and dry the surface. "
    "Use coasters and placemats against heat and water rings. Keep it out of direct sun. "
) * 3
SUGGESTIONS = (
    "Mention how to clean sticky spots with mild soap, how often to wax or oil the finish, "
    "and how to repair small scratches. Order the advice from daily to yearly care. "
) * 2
UPDATE_PROMPT = update_messages(
    COMPACT, Quoted(PROMPT, CHOSEN, None, textual_gradient=SUGGESTIONS), COMPACT.delimiters("0" * 8)
)
N = 5
SPEEDUP_TARGET = 2.5
RUN_TIME_TARGET_S = 180.0
RSS_TARGET_MB = 2048.0
MAXRSS_RE = re.compile(r"Maximum resident set size \(kbytes\): (\d+)")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-tokens", type=int, default=64, help="for the sampling comparison")
    parser.add_argument("--repeats", type=int, default=2, help="rounds of batched/sequential")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--skip-run", action="store_true", help="skip the `tpo run` subprocess")
    parser.add_argument("--out", type=Path)
    return parser.parse_args()


# ---------------------------------------------------------------- tpo run as a subprocess


def tree_rss(proc: psutil.Process) -> int:
    """Resident bytes of ``proc`` and all its descendants (0 for ones that just exited)."""
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def tpo_run_command() -> list[str]:
    tpo = Path(sys.executable).with_name("tpo")
    head = [str(tpo)] if tpo.exists() else [sys.executable, "-m", "langgraph_tpo.cli"]
    cmd = [*head, "run", PROMPT]
    return ["/usr/bin/time", "-v", *cmd] if shutil.which("/usr/bin/time") else cmd


def measure_tpo_run() -> dict[str, Any]:
    """Wall time and peak RSS of ``tpo run PROMPT`` (defaults), polled every 0.1 s."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        tpo_run_command(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    watcher = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss(watcher))
        time.sleep(0.1)
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - start
    match = MAXRSS_RE.search(stderr)
    return {
        "wall_s": wall,
        "returncode": proc.returncode,
        "peak_tree_rss_mb": peak / 2**20,
        "time_v_max_rss_mb": int(match.group(1)) / 1024 if match else None,
        "stdout_tail": stdout[-1500:],
        "stderr_tail": stderr[-1500:] if proc.returncode else "",
    }


# ---------------------------------------------------------------- in-process measurements


def timed_load(cache: bool) -> float:
    """Seconds to load the default model in this process, with or without the weights cache."""
    clear_model_cache()
    previous = os.environ.get(WEIGHTS_CACHE_ENV)
    os.environ[WEIGHTS_CACHE_ENV] = "1" if cache else "0"
    try:
        start = time.perf_counter()
        load_model()
        return time.perf_counter() - start
    finally:
        clear_model_cache()
        if previous is None:
            os.environ.pop(WEIGHTS_CACHE_ENV, None)
        else:
            os.environ[WEIGHTS_CACHE_ENV] = previous


def load_paths() -> dict[str, Any]:
    """First-ever load (GGUF parsed and dequantized) against a load from the weights cache."""
    gguf_s = timed_load(cache=False)
    timed_load(cache=True)  # makes sure the cache entry exists
    cached_s = timed_load(cache=True)
    return {"gguf_dequantize_s": gguf_s, "cached_s": cached_s, "speedup": gguf_s / cached_s}


def load_and_share() -> tuple[Any, dict[str, Any]]:
    """Build the embedded policy and judge like ``tpo run``; time the load; check sharing."""
    clear_model_cache()
    rss0 = psutil.Process().memory_info().rss
    settings = BackendSettings()
    start = time.perf_counter()
    policy = build_policy(settings)
    reward = build_reward(settings, policy)
    loaded = policy.loaded()  # the model loads on first use
    load_s = time.perf_counter() - start
    judge_model = getattr(reward, "chat_model", None)
    model, _ = load_causal_lm()
    info = {
        "load_s": load_s,
        "rss_after_load_mb": psutil.Process().memory_info().rss / 2**20,
        "rss_delta_mb": (psutil.Process().memory_info().rss - rss0) / 2**20,
        "reward_type": type(reward).__name__,
        "judge_is_policy": judge_model is policy,
        "judge_shares_model": judge_model is not None
        and judge_model.loaded().model is loaded.model,
        "load_causal_lm_shares_model": model is loaded.model,
        "source": loaded.source.describe(),
        "weights_cache": str(dequantized_cache_dir(loaded.source)),
        "torch_threads": _torch_threads(),
    }
    return policy, info


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


async def sample(
    policy: Any, messages: list[tuple[str, str]], n: int, calls: int, max_tokens: int, seed: int
) -> tuple[float, int]:
    """``calls`` sequential generate calls of ``n`` samples each: (seconds, output tokens)."""
    tokens = 0
    start = time.perf_counter()
    for i in range(calls):
        result = await policy.agenerate(
            [policy_messages(messages)],
            n=n,
            max_tokens=max_tokens,
            temperature=0.7,
            top_p=0.95,
            seed=seed + i,
        )
        tokens += int(result.llm_output["token_usage"]["completion_tokens"])
    return time.perf_counter() - start, tokens


def prompt_tokens(policy: Any, messages: list[tuple[str, str]]) -> int:
    tokenizer = policy.loaded().tokenizer
    return int(policy._encode(tokenizer, policy_messages(messages)).shape[1])


def policy_messages(messages: list[tuple[str, str]]) -> Any:
    from langchain_core.messages import convert_to_messages

    return convert_to_messages(messages)


async def batched_vs_sequential(
    policy: Any, messages: list[tuple[str, str]], args: argparse.Namespace
) -> dict[str, Any]:
    await sample(policy, messages, 1, 1, 4, args.seed)  # warm-up
    totals = {"batched": [0.0, 0], "sequential": [0.0, 0]}
    for r, variant in interleaved(("batched", "sequential"), args.repeats):
        seed = args.seed + 100 * r
        if variant == "batched":
            seconds, tokens = await sample(policy, messages, N, 1, args.max_tokens, seed)
        else:
            seconds, tokens = await sample(policy, messages, 1, N, args.max_tokens, seed)
        print(f"  round {r} {variant}: {seconds:.1f}s, {tokens} tokens", file=sys.stderr)
        totals[variant][0] += seconds
        totals[variant][1] += tokens
    out: dict[str, Any] = {}
    for variant, (seconds, tokens) in totals.items():
        out[variant] = {"seconds": seconds, "tokens": tokens, "tok_s": tokens / seconds}
    out["speedup_tok_s"] = out["batched"]["tok_s"] / out["sequential"]["tok_s"]
    out["speedup_wall"] = out["sequential"]["seconds"] / out["batched"]["seconds"]
    return out


# ---------------------------------------------------------------- report


def run_verdict(run: dict[str, Any]) -> str:
    rss = max(run["time_v_max_rss_mb"] or 0.0, run["peak_tree_rss_mb"])
    fast = run["wall_s"] < RUN_TIME_TARGET_S and run["returncode"] == 0
    return (
        f"tpo run {run['wall_s']:.0f}s < {RUN_TIME_TARGET_S:.0f}s: {verdict(fast)}; "
        f"peak RSS {rss:.0f} MB < {RSS_TARGET_MB:.0f} MB: {verdict(rss < RSS_TARGET_MB)}"
    )


def sampling_verdict(label: str, sampling: dict[str, Any]) -> str:
    speedup = sampling["speedup_tok_s"]
    return (
        f"{label}: batched/sequential tok/s {speedup:.2f}x (wall {sampling['speedup_wall']:.2f}x)"
        f" >= {SPEEDUP_TARGET}x: {verdict(speedup >= SPEEDUP_TARGET)}"
    )


def report(
    load: dict[str, Any], samplings: dict[str, dict[str, Any]], run: dict[str, Any] | None
) -> str:
    verdicts = [sampling_verdict(label, sampling) for label, sampling in samplings.items()]
    tables = [
        show_table(
            f"Batched N={N} sampling vs {N} sequential generations (in-process, "
            f"{load['torch_threads']} torch thread(s))",
            ["prompt", "prompt tokens", "variant", "seconds", "tokens", "tok/s", "speed-up"],
            [[label, s["prompt_tokens"], v, s[v]["seconds"], s[v]["tokens"], s[v]["tok_s"],
              s["speedup_tok_s"] if v == "batched" else None]
             for label, s in samplings.items() for v in ("batched", "sequential")],
        ),
        show_table(
            "Model load paths (same process, model cache cleared between)",
            ["first load: GGUF parse + dequantize s", "from the weights cache s", "speed-up"],
            [[load["paths"]["gguf_dequantize_s"], load["paths"]["cached_s"],
              load["paths"]["speedup"]]],
        ),
        show_table(
            "Embedded model load (as tpo run builds policy and judge)",
            ["load s", "RSS after load MB", "reward", "judge is policy", "judge shares model",
             "load_causal_lm shares"],
            [[load["load_s"], load["rss_after_load_mb"], load["reward_type"],
              load["judge_is_policy"], load["judge_shares_model"],
              load["load_causal_lm_shares_model"]]],
        ),
    ]  # fmt: skip
    if run is not None:
        tables.append(
            show_table(
                f'tpo run "{PROMPT}" (defaults, subprocess)',
                ["wall s", "exit", "peak tree RSS MB (psutil)", "max RSS MB (time -v)"],
                [
                    [
                        run["wall_s"],
                        run["returncode"],
                        run["peak_tree_rss_mb"],
                        run["time_v_max_rss_mb"],
                    ]
                ],
            )  # fmt: skip
        )
        verdicts.append(run_verdict(run))
    for line in verdicts:
        print(line)
    return "\n\n".join(tables + verdicts)


def main() -> None:
    args = parse_args()
    stop_on_signals()
    before = contention()
    run = None if args.skip_run else measure_tpo_run()
    paths = load_paths()
    policy, load = load_and_share()
    load["paths"] = paths
    samplings = {}
    for label, messages in (("query", [("human", PROMPT)]), ("update prompt", UPDATE_PROMPT)):
        print(f"sampling, {label}:", file=sys.stderr)
        samplings[label] = asyncio.run(batched_vs_sequential(policy, messages, args))
        samplings[label]["prompt_tokens"] = prompt_tokens(policy, messages)
    markdown = report(load, samplings, run)
    after = contention()
    print(f"contention: before {before}, after {after}")
    write_json(
        "cpu_backend",
        {
            "settings": {"n": N, "max_tokens": args.max_tokens, "repeats": args.repeats,
                         "prompt": PROMPT, "cpus": os.cpu_count()},
            "contention": {"before": before, "after": after},
            "load": load,
            "sampling": samplings["query"],
            "sampling_update_prompt": samplings["update prompt"],
            "tpo_run": run,
            "markdown": markdown,
        },
        args.out,
    )  # fmt: skip


if __name__ == "__main__":
    main()
