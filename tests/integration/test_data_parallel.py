"""``tpo eval`` against one vLLM CPU deployment with ``--data-parallel-size 2``: one URL in
front of vLLM's DP coordinator and two engine replicas (one core each, bound with
``VLLM_CPU_OMP_THREADS_BIND=0|1``). Every prompt is answered and both replicas serve (read
from ``/metrics``, whose series a DP deployment labels with ``engine``). The last test
records what a dead replica does to such a deployment: it takes the whole URL down.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import psutil
import pytest

from testsupport import VLLMServer
from testsupport.pair import another_policy_server
from testsupport.servers import parse_prometheus_samples

if TYPE_CHECKING:
    from tests.integration.conftest import VLLMServers

pytestmark = pytest.mark.integration

REQUESTS = "vllm:request_params_n_count"  # one per chat request
PROMPTS = 6
N, D = 2, 1


@pytest.fixture(scope="module")
def dp_server(vllm_servers: VLLMServers) -> Iterator[VLLMServer]:
    """The session's policy model served with ``--data-parallel-size 2``."""
    args = ["--data-parallel-size", "2"]
    with another_policy_server(vllm_servers, "dp2", "0|1", args) as server:
        yield server


def requests_per_engine(url: str) -> dict[str, float]:
    """Chat requests each engine replica behind ``url`` has taken so far."""
    text = httpx.get(url + "/metrics", timeout=10).text
    counts: dict[str, float] = {}
    for name, labels, value in parse_prometheus_samples(text):
        if name == REQUESTS:
            engine = labels.get("engine", "0")
            counts[engine] = counts.get(engine, 0.0) + value
    return counts


def settled(url: str, before: dict[str, float], total: int) -> dict[str, float]:
    """The requests per engine since ``before``, once they add up to ``total`` (vLLM may
    count a request just after answering it) or 10 s passed."""
    deadline = time.monotonic() + 10
    while True:
        now = requests_per_engine(url)
        delta = {e: now[e] - before.get(e, 0.0) for e in now}
        if sum(delta.values()) >= total or time.monotonic() > deadline:
            return delta
        time.sleep(0.2)


def test_tpo_eval_on_a_data_parallel_deployment_uses_both_replicas(
    vllm_servers: VLLMServers, dp_server: VLLMServer, tmp_path: Path
) -> None:
    data, out = tmp_path / "d.jsonl", tmp_path / "r.jsonl"
    topics = ["tea", "rivers", "owls", "bread", "glass", "maps"][:PROMPTS]
    data.write_text(
        "".join(
            json.dumps({"id": f"p{i}", "prompt": f"One sentence about {t}."}) + "\n"
            for i, t in enumerate(topics)
        )
    )
    before = requests_per_engine(dp_server.base_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TPO_")}
    proc = subprocess.run(
        [
            sys.executable, "-m", "langgraph_tpo.cli", "eval", str(data), "-o", str(out),
            "-c", "4", "-n", str(N), "-d", str(D), "--max-tokens", "16", "--seed", "1",
            "--policy-url", dp_server.openai_base_url,
            "--policy-model", vllm_servers.policy_model,
            "--reward-url", vllm_servers.reward_url, "--reward-model", vllm_servers.reward_model,
        ],
        env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert sorted(x["id"] for x in lines) == [f"p{i}" for i in range(PROMPTS)]
    assert all(x["response"] and x["stop_reason"] == "max_iterations" for x in lines)
    delta = settled(dp_server.base_url, before, PROMPTS * (1 + 3 * D))
    print(f"\nchat requests per engine replica: {delta}")
    assert sorted(delta) == ["0", "1"] and all(v > 0 for v in delta.values()), delta
    assert sum(delta.values()) == PROMPTS * (1 + 3 * D)  # one request per step, none lost


def test_one_dead_engine_replica_takes_the_whole_deployment_down(dp_server: VLLMServer) -> None:
    """vLLM's process manager shuts every engine down when one dies; the API server
    answers 500 (EngineDeadError) or 503 and exits. Runs last: it ends the module's server."""
    assert dp_server.process is not None and dp_server.is_healthy()
    children = psutil.Process(dp_server.process.pid).children(recursive=True)
    engines = {
        name: next(c for c in children if name in " ".join(c.cmdline()))
        for name in ("EngineCore_DP0", "EngineCore_DP1")
    }
    engines["EngineCore_DP1"].kill()
    deadline = time.monotonic() + 60
    while dp_server.is_healthy() or alive(engines["EngineCore_DP0"]):
        assert time.monotonic() < deadline, "the other replica still ran after 60 s"
        time.sleep(0.5)


def alive(process: psutil.Process) -> bool:
    """Running and not a zombie."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
