"""Load: 200 prompts through ``tpo eval --concurrency 16`` against the real vLLM CPU servers.

Every result is present exactly once, nothing fails, and the runner's memory stays flat:
its RSS is sampled while it runs, the peak is printed, and RSS after the second hundred
prompts must be within a small margin of RSS after the first hundred.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import pytest

from .conftest import cli_env, read_jsonl, tpo_command, write_prompts

if TYPE_CHECKING:
    from tests.integration.conftest import VLLMServers

PROMPTS = 200
CONCURRENCY = 16
PEAK_RSS_LIMIT = 1536 * 2**20  # 1.5 GiB
GROWTH_LIMIT = 64 * 2**20  # RSS growth allowed between prompt 100 and prompt 200
TIMEOUT_S = 1500  # about 3 minutes on an idle 2-core machine; a shared one is much slower


@dataclass
class Sample:
    """One look at the running ``tpo eval``: seconds since start, lines written, RSS."""

    seconds: float
    lines: int
    rss: int


def topics() -> list[str]:
    """200 distinct short prompts."""
    things = ["a wooden table", "a bicycle", "a cast iron pan", "a wool sweater", "a houseplant"]
    asks = ["clean", "store", "repair", "protect", "maintain", "describe", "choose", "buy"]
    return [
        f"In one sentence: how do I {ask} {thing}? (#{i})"
        for i, (ask, thing) in enumerate(
            (ask, thing) for _ in range(5) for ask in asks for thing in things
        )
    ][:PROMPTS]


def monitor(proc: subprocess.Popen[bytes], results: Path, every: float = 0.5) -> list[Sample]:
    """Sample the process's RSS and the results' line count until it exits."""
    watched = psutil.Process(proc.pid)
    started, samples = time.monotonic(), list[Sample]()
    while proc.poll() is None:
        if time.monotonic() - started > TIMEOUT_S:
            proc.kill()
            done = samples[-1].lines if samples else 0
            peak = max((s.rss for s in samples), default=0) / 2**20
            raise AssertionError(
                f"tpo eval did not finish in {TIMEOUT_S}s: {done} of {PROMPTS} prompts done, "
                f"RSS peak {peak:.0f} MiB (is the machine busy with other vLLM servers?)"
            )
        try:
            rss = watched.memory_info().rss
        except psutil.NoSuchProcess:
            break
        lines = results.read_bytes().count(b"\n") if results.exists() else 0
        samples.append(Sample(time.monotonic() - started, lines, rss))
        time.sleep(every)
    return samples


@pytest.mark.slow
@pytest.mark.integration
def test_200_prompts_at_concurrency_16_each_once_with_flat_memory(
    vllm_servers: VLLMServers, tmp_path: Path
) -> None:
    prompts = topics()
    assert len(set(prompts)) == PROMPTS
    data, out = write_prompts(tmp_path / "d.jsonl", prompts), tmp_path / "r.jsonl"
    log = tmp_path / "stderr.log"
    args = [
        "eval", str(data), "-o", str(out), "--concurrency", str(CONCURRENCY),
        "-n", "2", "-d", "1", "--max-tokens", "8", "--retries", "2",
        "--policy-url", vllm_servers.policy_url, "--policy-model", vllm_servers.policy_model,
        "--reward-url", vllm_servers.reward_url, "--reward-model", vllm_servers.reward_model,
        "--reward-path", str(vllm_servers.reward_tokenizer_path),
    ]  # fmt: skip
    with log.open("wb") as stderr:  # a file, not a pipe: a full pipe would stall the run
        proc = subprocess.Popen(
            [*tpo_command(), *args], env=cli_env(), stdout=subprocess.DEVNULL, stderr=stderr
        )
        samples = monitor(proc, out)
    proc.wait(timeout=30)
    err = log.read_text(errors="replace")

    assert proc.returncode == 0, err[-3000:]
    assert "error:" not in err and "Traceback" not in err
    lines = read_jsonl(out)
    assert sorted(x["id"] for x in lines) == sorted(f"p{i}" for i in range(PROMPTS))
    assert all(x["response"] and x["stop_reason"] == "max_iterations" for x in lines)

    peak = max(s.rss for s in samples)
    half = next(s.rss for s in samples if s.lines >= PROMPTS // 2)
    end = max(s.rss for s in samples if s.lines >= PROMPTS - CONCURRENCY)
    wall = samples[-1].seconds
    print(
        f"\ntpo eval: {PROMPTS} prompts, concurrency {CONCURRENCY}, {wall:.0f}s "
        f"({PROMPTS / wall:.2f} prompts/s); RSS peak {peak / 2**20:.0f} MiB, after 100 "
        f"prompts {half / 2**20:.0f} MiB, after 200 {end / 2**20:.0f} MiB"
    )
    assert peak < PEAK_RSS_LIMIT
    assert end - half < GROWTH_LIMIT
