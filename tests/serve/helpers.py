"""Helpers of the Chat Completions endpoint tests: the app served by uvicorn in a thread,
``tpo serve`` as a real process, and fake policies injected into
:func:`langgraph_tpo.serve.create_app` (never switched on from inside the product)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field
from starlette.applications import Starlette

from langgraph_tpo import PromptSet
from langgraph_tpo.fakes import FakeBatchReward, FakeNPolicy, step_kind
from langgraph_tpo.prompts import BUILTIN_SETS
from tests.cli.conftest import tpo_command
from testsupport.pair import ServerPair
from testsupport.servers import free_port

# instant and deterministic: N=2, D=1 unless a request says otherwise
SMALL = {"num_samples": 2, "max_iterations": 1, "max_tokens": 32}


class TokenPolicy(FakeNPolicy):
    """A fake n-policy that reports token usage, like a server does: the prompt's words as
    input tokens, each text's words as output tokens. ``usage`` records what it reported,
    ``stops`` the ``(kind, stop)`` of every call. Each generation's ``finish_reason`` is
    ``finish`` ("length" as if cut at max_tokens), or none when unset."""

    usage: list[tuple[int, int]] = Field(default_factory=list)
    stops: list[tuple[str, Any]] = Field(default_factory=list)
    finish: str | None = None

    def _generate(
        self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        self.stops.append((step_kind(run_manager), stop))
        return super()._generate(messages, stop, run_manager, **kwargs)

    def _package(self, texts: list[str], messages: list[BaseMessage]) -> ChatResult:
        prompt = sum(len(str(m.content).split()) for m in messages)
        generations = []
        info = {"finish_reason": self.finish} if self.finish else None
        for text in texts:
            words = len(text.split())
            meta = {"input_tokens": prompt, "output_tokens": words, "total_tokens": prompt + words}
            message = AIMessage(text, usage_metadata=meta)
            generations.append(ChatGeneration(message=message, generation_info=info))
        self.usage.append((prompt, sum(len(t.split()) for t in texts)))
        return ChatResult(generations=generations)


class GatedPolicy(FakeNPolicy):
    """A fake policy whose calls wait until ``gate`` is set (except calls of the prompt
    kinds in ``ungated``); it records each call that started and each that was cancelled
    while waiting."""

    gate: Any = Field(default_factory=threading.Event)
    ungated: set[str] = Field(default_factory=set)
    started: list[int] = Field(default_factory=list)
    cancelled: list[int] = Field(default_factory=list)

    async def _agenerate(
        self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        call = len(self.started)
        self.started.append(call)
        try:
            while not self.gate.is_set() and step_kind(run_manager) not in self.ungated:
                await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            self.cancelled.append(call)
            raise
        return self._generate(messages, stop, run_manager, **kwargs)


def marked_prompt_set(marker: str) -> PromptSet:
    """The paper set with ``marker`` in the system prompt of initial sampling."""
    data = BUILTIN_SETS["paper"].to_dict()
    data["name"] = "marked"
    data["sample"][0]["content"] += f" {marker}"
    return PromptSet.from_dict(data)


def length_reward() -> FakeBatchReward:
    return FakeBatchReward(lambda text: float(len(text)))


@contextmanager
def serving(app: Starlette) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread; yields the OpenAI base URL (``.../v1``)."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(10)


class ServeProcess:
    """A running ``tpo serve``: its OpenAI base URL and its log (stdout and stderr)."""

    def __init__(self, args: Sequence[str], env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.log_path = log
        with log.open("w") as out:
            self.proc = subprocess.Popen(
                [*tpo_command(), "serve", "--port", str(self.port), *args],
                env={**os.environ, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"tpo serve exited {self.proc.returncode}:\n{self.log()[-3000:]}")
            try:
                httpx.get(f"{self.url}/models", timeout=2)
                return
            except httpx.TransportError:
                assert time.monotonic() < deadline, f"tpo serve did not start:\n{self.log()}"
                time.sleep(0.2)

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> str:
        """Stop the server (SIGTERM, then SIGKILL); its whole log."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.log()


@contextmanager
def tpo_serve(
    args: Sequence[str], tmp_path: Path, env: dict[str, str] | None = None, ready_s: float = 600
) -> Iterator[ServeProcess]:
    """``tpo serve ARGS`` on a free port, stopped at the end."""
    server = ServeProcess(args, env or {}, tmp_path / "tpo-serve.log")
    try:
        server.wait_ready(ready_s)
        yield server
    finally:
        server.stop()


def backend_flags(servers: ServerPair) -> list[str]:
    """`tpo serve` flags for the real vLLM pair of the integration tests."""
    return [
        "--policy-url", servers.policy_openai_url,
        "--policy-model", servers.policy_model,
        "--reward-url", servers.reward_url,
        "--reward-model", servers.reward_model,
        "--reward-path", str(servers.reward_tokenizer_path),
    ]  # fmt: skip
