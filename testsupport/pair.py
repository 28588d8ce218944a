"""A vLLM policy server and a pooling reward server, for the test suite and the benchmarks.

:func:`start_server_pair` builds what is missing (the pinned vLLM CPU venv, SmolLM2 as a
float32 HF directory, the tiny reward model) and starts a policy server (``smollm2``) pinned
to CPU 0 and a pooling reward server (``tiny-rm``) pinned to the last CPU, with the defaults
of :class:`VLLMServer` (float32, eager, no chunked prefill). :func:`external_server_pair`
describes servers that are already running (for example on a GPU machine).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from langgraph_tpo.backends.servers.vllm_server import server_root_url
from testsupport.models import (
    build_smollm2_hf_dir,
    build_tiny_reward_model,
    default_cache_dir,
)
from testsupport.servers import VLLMServer, parse_prometheus
from testsupport.vllm_env import ensure_vllm_venv

POLICY_NAME = "smollm2"
REWARD_NAME = "tiny-rm"
READY_TIMEOUT_S = 420.0
# vLLM's "auto" binding puts every server's compute thread on core 0; pin them apart instead.
POLICY_CPUS = "0"
REWARD_CPUS = str(max((os.cpu_count() or 1) - 1, 0))


@dataclass
class ServerPair:
    """Where the policy and reward servers are, and the processes started for them here."""

    policy_url: str
    reward_url: str
    policy_model: str
    reward_model: str
    reward_tokenizer_path: Path
    policy_tokenizer_path: Path | None = None
    reward_model_path: Path | None = None  # local weights, for in-process parity checks
    policy_server: VLLMServer | None = None
    reward_server: VLLMServer | None = None
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

    def reset_prefix_cache(self) -> bool:
        """Empty the policy server's prefix cache, so a timed run does not reuse the KV blocks
        of the run before it. Needs ``VLLM_SERVER_DEV_MODE=1`` on the server (pairs started
        with ``dev_mode=True``); returns False where the server does not offer it."""
        return reset_prefix_cache(self.policy_url)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


def fetch_metrics(url: str, match: Mapping[str, str] | None = None) -> dict[str, float]:
    response = httpx.get(url + "/metrics", timeout=10.0)
    response.raise_for_status()
    return parse_prometheus(response.text, match)


def reset_prefix_cache(url: str, attempts: int = 20) -> bool:
    """POST ``/reset_prefix_cache``; retried while blocks are still held (``success: false``)."""
    for _ in range(attempts):
        response = httpx.post(url + "/reset_prefix_cache", timeout=30.0)
        if response.status_code in (404, 405):
            return False
        response.raise_for_status()
        if response.json().get("success", True):
            return True
        time.sleep(0.5)
    return False


def external_server_pair(
    policy_url: str,
    reward_url: str,
    *,
    policy_model: str = POLICY_NAME,
    reward_model: str = REWARD_NAME,
    reward_tokenizer: Path | str | None = None,
    policy_tokenizer: Path | str | None = None,
) -> ServerPair:
    """Servers already running; the reward tokenizer defaults to the tiny test model's.

    When the reward tokenizer directory also holds weights (``config.json``), it doubles
    as ``reward_model_path`` for in-process comparisons.
    """
    tokenizer = Path(reward_tokenizer) if reward_tokenizer else build_tiny_reward_model()
    return ServerPair(
        policy_url=server_root_url(policy_url),
        reward_url=server_root_url(reward_url),
        policy_model=policy_model,
        reward_model=reward_model,
        reward_tokenizer_path=tokenizer,
        policy_tokenizer_path=Path(policy_tokenizer) if policy_tokenizer else None,
        reward_model_path=tokenizer if (tokenizer / "config.json").is_file() else None,
    )


@contextlib.contextmanager
def another_policy_server(
    pair: ServerPair, label: str, cpus: str, extra_args: Sequence[str] = ()
) -> Iterator[VLLMServer]:
    """One more vLLM server of ``pair``'s policy model (``extra_args`` added, bound to
    ``cpus``, a 1 GiB KV cache, logged to ``logs/vllm-policy-LABEL-PID.log``), ready for
    the duration and stopped after it. Skips the test when the model is not on disk here
    (servers the user started)."""
    if pair.policy_tokenizer_path is None:
        import pytest  # testsupport imports pytest only where a test calls it

        pytest.skip(f"the policy model is not available locally to start the {label} server")
    server = VLLMServer(
        ensure_vllm_venv(),
        pair.policy_tokenizer_path,
        pair.policy_model,
        extra_args=extra_args,
        log_path=default_cache_dir() / "logs" / f"vllm-policy-{label}-{os.getpid()}.log",
        env={"VLLM_CPU_OMP_THREADS_BIND": cpus, "VLLM_CPU_KVCACHE_SPACE": "1"},
    )
    try:
        server.start().wait_ready(READY_TIMEOUT_S)
        yield server
    finally:
        server.stop()


def start_server_pair(
    servers: list[VLLMServer],
    *,
    policy_cpus: str = POLICY_CPUS,
    reward_cpus: str = REWARD_CPUS,
    log_suffix: str = "",
    dev_mode: bool = False,
) -> ServerPair:
    """Build what is missing and start both servers, appending each to ``servers`` as it
    starts, so the caller can stop them even when a later step fails. ``policy_cpus`` and
    ``reward_cpus`` are the servers' ``VLLM_CPU_OMP_THREADS_BIND``; ``dev_mode`` turns on
    vLLM's development endpoints (``/reset_prefix_cache``, used by the benchmarks)."""
    dev_env = {"VLLM_SERVER_DEV_MODE": "1"} if dev_mode else {}
    started = time.monotonic()
    python = ensure_vllm_venv()
    logs = default_cache_dir() / "logs"
    reward_dir = build_tiny_reward_model()
    reward = VLLMServer(
        python,
        reward_dir,
        REWARD_NAME,
        runner="pooling",
        log_path=logs / f"vllm-reward{log_suffix}.log",
        env={"VLLM_CPU_OMP_THREADS_BIND": reward_cpus, **dev_env},
    )
    servers.append(reward.start())  # the reward server boots while SmolLM2 is converted
    policy_dir = build_smollm2_hf_dir()
    policy = VLLMServer(
        python,
        policy_dir,
        POLICY_NAME,
        log_path=logs / f"vllm-policy{log_suffix}.log",
        env={"VLLM_CPU_OMP_THREADS_BIND": policy_cpus, **dev_env},
    )
    servers.append(policy.start())
    for server in (reward, policy):
        server.wait_ready(READY_TIMEOUT_S)
    print(f"\nvLLM servers ready in {time.monotonic() - started:.0f}s", file=sys.stderr)
    return ServerPair(
        policy_url=policy.base_url,
        reward_url=reward.base_url,
        policy_model=POLICY_NAME,
        reward_model=REWARD_NAME,
        reward_tokenizer_path=reward_dir,
        policy_tokenizer_path=policy_dir,
        reward_model_path=reward_dir,
        policy_server=policy,
        reward_server=reward,
        servers=servers,
    )
