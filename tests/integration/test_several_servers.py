"""Two real vLLM CPU policy servers behind one policy: both serve, and one killed mid-run
loses or repeats nothing.

The second policy server serves the same SmolLM2 directory as the session's pair; it is
started here with a small KV cache (1 GiB) and killed (SIGKILL, like a crash) by the last
test while ``tpo eval`` runs over several prompts.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from langchain_core.messages import HumanMessage

from langgraph_tpo.backends.servers.multi_server import BalancedChatModel
from langgraph_tpo.backends.servers.vllm_server import vllm_chat_model
from langgraph_tpo.policy import supports_n
from testsupport import VLLMServer
from testsupport.pair import REWARD_CPUS, another_policy_server, fetch_metrics

if TYPE_CHECKING:
    from tests.integration.conftest import VLLMServers

pytestmark = pytest.mark.integration
session_loop = pytest.mark.asyncio(loop_scope="session")

REQUESTS = "vllm:request_params_n_count"  # one per chat request
SEQUENCES = "vllm:request_params_n_sum"  # n per chat request
PROMPTS = 8
N, D = 2, 1


@pytest.fixture(scope="module")
def second_policy(vllm_servers: VLLMServers) -> Iterator[VLLMServer]:
    """Another policy server of the same model, on the reward server's core."""
    with another_policy_server(vllm_servers, "second", REWARD_CPUS) as server:
        yield server


def served(url: str) -> tuple[float, float]:
    """(chat requests, sequences) the server at ``url`` has taken so far."""
    metrics = fetch_metrics(url)
    return metrics.get(REQUESTS, 0.0), metrics.get(SEQUENCES, 0.0)


def settle(urls: list[str], before: dict[str, tuple[float, float]], total: int) -> None:
    """Wait until the servers' counters add up to ``total`` requests (vLLM may count a
    request just after answering it)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if sum(served(u)[0] - before[u][0] for u in urls) >= total:
            return
        time.sleep(0.2)


@session_loop
async def test_both_servers_serve_and_n_stays_in_one_request(
    vllm_servers: VLLMServers, second_policy: VLLMServer
) -> None:
    urls = [vllm_servers.policy_url, second_policy.base_url]
    chat = vllm_chat_model(",".join(urls), vllm_servers.policy_model)
    assert isinstance(chat, BalancedChatModel) and supports_n(chat)
    before = {u: served(u) for u in urls}
    calls = 6
    params = {"n": 3, "max_tokens": 8, "temperature": 0.7, "seed": 3}
    results = await asyncio.gather(
        *(chat.agenerate([[HumanMessage(f"Name a colour, {i}.")]], **params) for i in range(calls))
    )
    assert all(len(r.generations[0]) == 3 for r in results)
    settle(urls, before, calls)
    delta = {u: tuple(a - b for a, b in zip(served(u), before[u], strict=True)) for u in urls}
    assert all(requests > 0 for requests, _ in delta.values()), delta  # both served
    assert sum(requests for requests, _ in delta.values()) == calls  # one request per call
    assert sum(sequences for _, sequences in delta.values()) == 3 * calls  # n kept whole
    stats = chat.balancer.stats()  # keyed by the servers' OpenAI API roots
    assert {u: s["requests"] for u, s in stats.items()} == {
        u + "/v1": d[0] for u, d in delta.items()
    }


def write_dataset(path: Path) -> Path:
    topics = ["tea", "rivers", "owls", "bread", "glass", "maps", "snow", "bees"][:PROMPTS]
    rows = [{"id": f"p{i}", "prompt": f"One sentence about {t}."} for i, t in enumerate(topics)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def eval_command(vllm_servers: VLLMServers, urls: list[str], data: Path, out: Path) -> list[str]:
    return [
        sys.executable, "-m", "langgraph_tpo.cli", "eval", str(data), "-o", str(out),
        "-c", "2", "-n", str(N), "-d", str(D), "--max-tokens", "16", "--seed", "1",
        "--policy-url", urls[0], "--policy-url", urls[1],
        "--policy-model", vllm_servers.policy_model,
        "--reward-url", vllm_servers.reward_url, "--reward-model", vllm_servers.reward_model,
    ]  # fmt: skip


def lines_in(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_a_server_killed_mid_run_loses_and_repeats_nothing(
    vllm_servers: VLLMServers, second_policy: VLLMServer, tmp_path: Path
) -> None:
    urls = [vllm_servers.policy_url, second_policy.base_url]
    data, out, log = write_dataset(tmp_path / "d.jsonl"), tmp_path / "r.jsonl", tmp_path / "err"
    second_before = served(second_policy.base_url)[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TPO_")}
    env.update({"NO_COLOR": "1", "COLUMNS": "300"})
    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            eval_command(vllm_servers, urls, data, out), env=env, stdout=subprocess.DEVNULL,
            stderr=stderr,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 300
            while served(second_policy.base_url)[0] - second_before < 2:
                assert proc.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, "the second server got no requests"
                time.sleep(0.1)
            lines_at_kill = len(lines_in(out))
            assert second_policy.process is not None
            os.killpg(second_policy.process.pid, signal.SIGKILL)  # a crash, mid-run
            proc.wait(timeout=900)
        finally:
            if proc.poll() is None:
                proc.kill()
    err = log.read_text(errors="replace")

    assert proc.returncode == 0, err[-3000:]
    assert lines_at_kill < PROMPTS  # the kill did land mid-run
    lines = lines_in(out)
    assert sorted(line["id"] for line in lines) == sorted(f"p{i}" for i in range(PROMPTS))
    assert all(line["response"] and line["stop_reason"] == "max_iterations" for line in lines)
    per_server = [line["server_requests"]["policy"] for line in lines]
    assert sum(counts.get(urls[1] + "/v1", 0) for counts in per_server) >= 1
    # every prompt made its 1+3D chat requests; the ones cut off by the kill were resent
    assert all(sum(counts.values()) >= 1 + 3 * D for counts in per_server)
    summary = next(x for x in err.splitlines() if x.startswith("requests per server: policy"))
    print(f"\n{summary} (killed after {lines_at_kill} of {PROMPTS} prompts were written)")
    assert urls[0] in summary and urls[1] in summary and "failed" in summary
