"""The vLLM servers the benchmarks run against, started like the integration tests do.

:func:`start_test_servers` builds what is missing (the pinned vLLM CPU venv, SmolLM2 as a
float32 HF directory, the tiny reward model) and starts a policy server (``smollm2``) pinned to
CPU 0 and a pooling reward server (``tiny-rm``) pinned to the last CPU, both with the test
defaults of :class:`langgraph_tpo.testing.VLLMServer` (float32, eager, no chunked prefill).
:func:`test_servers` is the context manager every benchmark uses: it reuses servers given by
URL (``--policy-url``/``--reward-url``, e.g. GPU servers) or starts its own and always stops
them (whole process groups) on the way out.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

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
CHAT = {"handler": "/v1/chat/completions"}
CLASSIFY = {"handler": "/classify"}


@dataclass
class BenchServers:
    """Where the policy and reward servers are, and the processes this run started."""

    policy_url: str
    reward_url: str
    policy_model: str
    reward_model: str
    reward_tokenizer_path: Path
    policy_tokenizer_path: Path
    servers: list[VLLMServer] = field(default_factory=list)

    @property
    def started_here(self) -> bool:
        return bool(self.servers)

    @property
    def policy_openai_url(self) -> str:
        return self.policy_url + "/v1"

    def policy_metrics(self, match: Mapping[str, str] | None = None) -> dict[str, float]:
        """The policy server's ``/metrics``, each name summed over (matching) label sets."""
        return fetch_metrics(self.policy_url, match)

    def reward_metrics(self, match: Mapping[str, str] | None = None) -> dict[str, float]:
        """The reward server's ``/metrics``, each name summed over (matching) label sets."""
        return fetch_metrics(self.reward_url, match)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


def fetch_metrics(url: str, match: Mapping[str, str] | None = None) -> dict[str, float]:
    response = httpx.get(url + "/metrics", timeout=10.0)
    response.raise_for_status()
    return parse_prometheus(response.text, match)


def start_test_servers(
    servers: list[VLLMServer], policy_cpus: str = POLICY_CPUS, reward_cpus: str = REWARD_CPUS
) -> BenchServers:
    """Build what is missing and start both servers, appending each to ``servers`` as it
    starts (so the caller can stop them even when a later step fails). ``policy_cpus`` and
    ``reward_cpus`` are the servers' ``VLLM_CPU_OMP_THREADS_BIND`` (the tests' by default)."""
    started = time.monotonic()
    python = ensure_vllm_venv()
    logs = default_cache_dir() / "logs"
    reward_dir = build_tiny_reward_model()
    suffix = f"bench-{os.getpid()}"
    reward = VLLMServer(
        python,
        reward_dir,
        REWARD_NAME,
        runner="pooling",
        log_path=logs / f"vllm-reward-{suffix}.log",
        env={"VLLM_CPU_OMP_THREADS_BIND": reward_cpus},
    )
    servers.append(reward.start())  # the reward server boots while SmolLM2 is converted
    policy_dir = build_smollm2_hf_dir()
    policy = VLLMServer(
        python,
        policy_dir,
        POLICY_NAME,
        log_path=logs / f"vllm-policy-{suffix}.log",
        env={"VLLM_CPU_OMP_THREADS_BIND": policy_cpus},
    )
    servers.append(policy.start())
    for server in (reward, policy):
        server.wait_ready(READY_TIMEOUT_S)
    print(f"vLLM servers ready in {time.monotonic() - started:.0f}s", file=sys.stderr)
    return BenchServers(
        policy_url=policy.base_url,
        reward_url=reward.base_url,
        policy_model=POLICY_NAME,
        reward_model=REWARD_NAME,
        reward_tokenizer_path=reward_dir,
        policy_tokenizer_path=policy_dir,
        servers=servers,
    )


def add_server_args(parser: argparse.ArgumentParser) -> None:
    """``--policy-url``/``--reward-url`` (and model names, tokenizers) to reuse servers."""
    group = parser.add_argument_group("servers (default: start vLLM CPU servers here)")
    group.add_argument("--policy-url", help="running policy server (vLLM), e.g. GPU")
    group.add_argument("--reward-url", help="running pooling reward server with /classify")
    group.add_argument("--policy-model", default=POLICY_NAME, help="served policy model name")
    group.add_argument("--reward-model", default=REWARD_NAME, help="served reward model name")
    group.add_argument("--reward-tokenizer", type=Path, help="reward tokenizer directory")
    group.add_argument("--policy-tokenizer", type=Path, help="policy tokenizer directory")
    group.add_argument("--policy-cpus", default=POLICY_CPUS, help="CPU binding of the policy")
    group.add_argument("--reward-cpus", default=REWARD_CPUS, help="CPU binding of the reward")


@contextlib.contextmanager
def running_servers(args: argparse.Namespace | None = None) -> Iterator[BenchServers]:
    """Servers from ``--policy-url``/``--reward-url`` when both are given, else started here
    and stopped (process groups, SIGTERM then SIGKILL) when the block exits."""
    policy_url = getattr(args, "policy_url", None)
    reward_url = getattr(args, "reward_url", None)
    if policy_url and reward_url:
        reward_tok = getattr(args, "reward_tokenizer", None) or build_tiny_reward_model()
        policy_tok = getattr(args, "policy_tokenizer", None) or build_smollm2_hf_dir()
        yield BenchServers(
            policy_url=server_root_url(policy_url),
            reward_url=server_root_url(reward_url),
            policy_model=getattr(args, "policy_model", POLICY_NAME),
            reward_model=getattr(args, "reward_model", REWARD_NAME),
            reward_tokenizer_path=Path(reward_tok),
            policy_tokenizer_path=Path(policy_tok),
        )
        return
    started: list[VLLMServer] = []
    try:
        yield start_test_servers(
            started,
            getattr(args, "policy_cpus", POLICY_CPUS),
            getattr(args, "reward_cpus", REWARD_CPUS),
        )
    finally:
        for server in started:
            server.stop()
