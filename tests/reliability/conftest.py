"""Fixtures of the reliability suite: stub servers, real vLLM servers, the ``tpo`` CLI.

Faults are real where they can be: stub servers are separate processes reached over HTTP,
killed with SIGKILL and restarted on the same port; ``tpo`` runs as a subprocess and is
signalled for real. The load test and the context-window tests use the real vLLM CPU
servers of the ``vllm_servers`` session fixture (``tests/conftest.py``).
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from langgraph.types import RetryPolicy

from langgraph_tpo import TPOConfig
from langgraph_tpo.backends.servers.vllm_server import VLLMServerReward, vllm_chat_model
from langgraph_tpo.graph.builder import retry_transient
from testsupport import build_tiny_reward_model

from .stub import StubServer

KEY = "sk-PLANTED-5b1e0c3a9d7f42"  # a planted API key: must never show up in any output
POLICY_MODEL, REWARD_MODEL = "stub", "stub-rm"
QUERY = "How do I take care of a wooden table?"
SMALL = TPOConfig(num_samples=2, max_iterations=1, max_tokens=8)  # a run in a few requests
# Retry budgets with short waits, so a test spends fractions of a second in backoff.
QUICK = RetryPolicy(
    initial_interval=0.05, backoff_factor=2.0, max_attempts=2, jitter=False,
    retry_on=retry_transient,
)  # fmt: skip
PATIENT = RetryPolicy(
    initial_interval=0.2, backoff_factor=2.0, max_interval=2.0, max_attempts=8, jitter=False,
    retry_on=retry_transient,
)  # fmt: skip
CLEAN_ENV = (
    "TPO_POLICY_FACTORY", "TPO_REWARD_FACTORY", "TPO_POLICY_URL", "TPO_POLICY_MODEL",
    "TPO_POLICY_PATH", "TPO_REWARD_URL", "TPO_REWARD_MODEL", "TPO_REWARD_PATH", "TPO_JUDGE",
    "TPO_API_KEY", "OPENAI_API_KEY", "LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2",
)  # fmt: skip


@pytest.fixture(scope="session")
def reward_tokenizer() -> Path:
    """The tiny reward model's directory: its chat template renders /classify inputs."""
    return build_tiny_reward_model()


@pytest.fixture
def stubs(tmp_path: Path) -> Iterator[Callable[..., StubServer]]:
    """A factory of started stub servers (``stubs("policy", {...})``), all killed at the end."""
    started: list[StubServer] = []

    def make(name: str, config: dict[str, Any] | None = None) -> StubServer:
        server = StubServer(tmp_path, name, config).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@functools.lru_cache(maxsize=2)
def cached_tokenizer(path: str) -> Any:
    """A reward tokenizer, loaded once per test session."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path, local_files_only=True)


class SessionTokenizerReward(VLLMServerReward):
    """``VLLMServerReward`` that shares one loaded tokenizer across tests (loading it takes
    about a second; everything else is the real HTTP reward)."""

    def load_tokenizer(self) -> Any:
        return cached_tokenizer(str(self.tokenizer_path))


@dataclass
class Backends:
    """A policy stub and a reward stub, and models that talk to them over HTTP."""

    policy: StubServer
    reward: StubServer
    tokenizer: Path

    def chat_model(self, **kwargs: Any) -> Any:
        """``vllm_chat_model`` for the policy stub (no client-side retries by default)."""
        return vllm_chat_model(self.policy.base_url, POLICY_MODEL, **{"timeout": 10.0, **kwargs})

    def reward_model(self, **kwargs: Any) -> VLLMServerReward:
        """``VLLMServerReward`` for the reward stub."""
        return SessionTokenizerReward(
            self.reward.base_url, REWARD_MODEL, tokenizer_path=self.tokenizer, **kwargs
        )

    def cli_args(self) -> list[str]:
        """The ``tpo`` backend flags naming both stubs."""
        return [
            "--policy-url", self.policy.openai_base_url, "--policy-model", POLICY_MODEL,
            "--reward-url", self.reward.base_url, "--reward-model", REWARD_MODEL,
            "--reward-path", str(self.tokenizer),
        ]  # fmt: skip


@pytest.fixture(scope="session")
def stub_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StubServer, ...]]:
    """One policy and one reward stub process for the session (restarted when a test
    killed one)."""
    folder = tmp_path_factory.mktemp("stubs")
    pair = (StubServer(folder, "policy").start(), StubServer(folder, "reward").start())
    yield pair
    for server in pair:
        server.stop()


@pytest.fixture
def backends(stub_pair: tuple[StubServer, ...], reward_tokenizer: Path) -> Backends:
    """Healthy policy and reward stubs with empty request logs (tests configure faults)."""
    policy, reward = (server.reset() for server in stub_pair)
    return Backends(policy, reward, reward_tokenizer)


def tpo_command() -> list[str]:
    """The installed ``tpo`` script next to this interpreter, else ``python -m``."""
    script = Path(sys.executable).parent / "tpo"
    return [str(script)] if script.exists() else [sys.executable, "-m", "langgraph_tpo.cli"]


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a ``tpo`` subprocess: no backend or key settings inherited."""
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    env.update({"NO_COLOR": "1", "COLUMNS": "200", **extra})
    return env


def spawn(args: Sequence[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start ``tpo ARGS`` as a real process (stdout and stderr piped)."""
    return subprocess.Popen(
        [*tpo_command(), *args],
        env=env or cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_tpo(
    args: Sequence[str],
    env: dict[str, str] | None = None,
    timeout: float = 120,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``tpo ARGS`` to completion as a real process (``stdin``: text to feed it)."""
    return subprocess.run(
        [*tpo_command(), *args],
        env=env or cli_env(),
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every line of ``path`` as JSON; fails on a partial or invalid line."""
    text = path.read_text(encoding="utf-8")
    assert not text or text.endswith("\n"), "results must end with a complete line"
    return [json.loads(line) for line in text.splitlines()]


def write_prompts(path: Path, prompts: Sequence[str]) -> Path:
    """A JSONL dataset with ids ``p0, p1, ...``."""
    lines = [json.dumps({"id": f"p{i}", "prompt": p}) for i, p in enumerate(prompts)]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def questions(count: int) -> list[str]:
    """``count`` distinct short prompts."""
    return [f"Question {i}: how do I look after thing number {i}?" for i in range(count)]


def one_error_line(stderr: str) -> str:
    """The single ``error:`` line of a failed command; fails on a traceback or several lines."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    return errors[0]
