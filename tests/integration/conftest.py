"""Real vLLM servers for the integration tests, started once per session.

Set ``TPO_TEST_POLICY_URL`` and ``TPO_TEST_REWARD_URL`` to use servers that are already
running (served names from ``TPO_TEST_POLICY_MODEL``/``TPO_TEST_REWARD_MODEL``, defaults
``smollm2``/``tiny-rm``; the reward tokenizer from ``TPO_TEST_REWARD_TOKENIZER``, default the
tiny reward model built here). Otherwise the vLLM venv is installed if needed, both models are
built (cached), and a policy and a pooling reward server are started concurrently.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from langgraph_tpo.backends.vllm_server import server_root_url
from langgraph_tpo.testing import (
    VLLMServer,
    build_smollm2_hf_dir,
    build_tiny_reward_model,
    default_cache_dir,
    ensure_vllm_venv,
)
from langgraph_tpo.testing.servers import parse_prometheus

POLICY_NAME = "smollm2"
REWARD_NAME = "tiny-rm"
READY_TIMEOUT_S = 420.0
# vLLM's "auto" binding puts every server's compute thread on core 0; pin them apart instead.
_LAST_CPU = max((os.cpu_count() or 1) - 1, 0)
POLICY_CPUS = "0"
REWARD_CPUS = str(_LAST_CPU)


@dataclass
class VLLMServers:
    """Where the test servers are and how to reach their metrics."""

    policy_url: str
    reward_url: str
    policy_model: str
    reward_model: str
    reward_tokenizer_path: Path
    reward_model_path: Path | None = None  # local weights, for in-process parity checks
    policy_server: VLLMServer | None = None
    reward_server: VLLMServer | None = None
    servers: list[VLLMServer] = field(default_factory=list)

    def policy_metrics(self, match: Mapping[str, str] | None = None) -> dict[str, float]:
        """The policy server's ``/metrics``, each name summed over (matching) label sets."""
        return _metrics(self.policy_url, match)

    def reward_metrics(self, match: Mapping[str, str] | None = None) -> dict[str, float]:
        """The reward server's ``/metrics``, each name summed over (matching) label sets."""
        return _metrics(self.reward_url, match)


def _metrics(url: str, match: Mapping[str, str] | None) -> dict[str, float]:
    response = httpx.get(url + "/metrics", timeout=10.0)
    response.raise_for_status()
    return parse_prometheus(response.text, match)


def _external_servers() -> VLLMServers | None:
    policy_url = os.environ.get("TPO_TEST_POLICY_URL")
    reward_url = os.environ.get("TPO_TEST_REWARD_URL")
    if not (policy_url and reward_url):
        return None
    tokenizer = os.environ.get("TPO_TEST_REWARD_TOKENIZER")
    tokenizer_path = Path(tokenizer) if tokenizer else build_tiny_reward_model()
    has_weights = (tokenizer_path / "config.json").is_file()
    return VLLMServers(
        policy_url=server_root_url(policy_url),
        reward_url=server_root_url(reward_url),
        policy_model=os.environ.get("TPO_TEST_POLICY_MODEL", POLICY_NAME),
        reward_model=os.environ.get("TPO_TEST_REWARD_MODEL", REWARD_NAME),
        reward_tokenizer_path=tokenizer_path,
        reward_model_path=tokenizer_path if has_weights else None,
    )


def _start_servers(servers: list[VLLMServer]) -> VLLMServers:
    """Build what is missing and start both servers, appending each to ``servers`` as it starts."""
    started = time.monotonic()
    python = ensure_vllm_venv()
    logs = default_cache_dir() / "logs"
    reward_dir = build_tiny_reward_model()
    reward = VLLMServer(
        python,
        reward_dir,
        REWARD_NAME,
        runner="pooling",
        log_path=logs / "vllm-reward.log",
        env={"VLLM_CPU_OMP_THREADS_BIND": REWARD_CPUS},
    )
    servers.append(reward.start())  # the reward server boots while SmolLM2 is converted
    policy_dir = build_smollm2_hf_dir()
    policy = VLLMServer(
        python,
        policy_dir,
        POLICY_NAME,
        log_path=logs / "vllm-policy.log",
        env={"VLLM_CPU_OMP_THREADS_BIND": POLICY_CPUS},
    )
    servers.append(policy.start())
    for server in (reward, policy):
        server.wait_ready(READY_TIMEOUT_S)
    print(f"\nvLLM servers ready in {time.monotonic() - started:.0f}s", file=sys.stderr)
    return VLLMServers(
        policy_url=policy.base_url,
        reward_url=reward.base_url,
        policy_model=POLICY_NAME,
        reward_model=REWARD_NAME,
        reward_tokenizer_path=reward_dir,
        reward_model_path=reward_dir,
        policy_server=policy,
        reward_server=reward,
        servers=servers,
    )


@pytest.fixture(scope="session")
def vllm_servers() -> Iterator[VLLMServers]:
    """A policy (``smollm2``) and a reward (``tiny-rm``) vLLM server, stopped at session end."""
    external = _external_servers()
    if external is not None:
        yield external
        return
    servers: list[VLLMServer] = []
    try:
        yield _start_servers(servers)
    finally:
        for server in servers:
            server.stop()
