"""Helpers for the Chat Completions endpoint tests: a real uvicorn server on a free port,
and fake policies injected into :func:`langgraph_tpo.serve.create_app` (never switched on
from inside the product)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field
from starlette.applications import Starlette

from langgraph_tpo.fakes import FakeBatchReward, FakeNPolicy
from langgraph_tpo.serve import create_app
from langgraph_tpo.testing.servers import free_port

# instant and deterministic: N=2, D=1 unless a request says otherwise
SMALL = {"num_samples": 2, "max_iterations": 1, "max_tokens": 32}


class TokenPolicy(FakeNPolicy):
    """A fake n-policy that reports token usage, like a server does: the prompt's words as
    input tokens, each text's words as output tokens. ``usage`` records what it reported."""

    usage: list[tuple[int, int]] = Field(default_factory=list)

    def _draw(self, messages: list[BaseMessage], n: int, kwargs: dict[str, Any]) -> ChatResult:
        result = super()._draw(messages, n, kwargs)
        prompt = sum(len(str(m.content).split()) for m in messages)
        generations = []
        for g in result.generations:
            words = len(str(g.message.content).split())
            meta = {"input_tokens": prompt, "output_tokens": words, "total_tokens": prompt + words}
            generations.append(
                ChatGeneration(message=AIMessage(g.message.content, usage_metadata=meta))
            )
        self.usage.append((prompt, sum(len(str(g.message.content).split()) for g in generations)))
        return ChatResult(generations=generations)


class GatedPolicy(FakeNPolicy):
    """A fake policy whose calls wait until ``gate`` is set; it records each call that
    started and each that was cancelled while waiting."""

    gate: Any = Field(default_factory=threading.Event)
    started: list[int] = Field(default_factory=list)
    cancelled: list[int] = Field(default_factory=list)

    async def _agenerate(
        self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        call = len(self.started)
        self.started.append(call)
        try:
            while not self.gate.is_set():
                await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            self.cancelled.append(call)
            raise
        return self._generate(messages, stop, **kwargs)


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


@pytest.fixture
def policy() -> TokenPolicy:
    return TokenPolicy()


@pytest.fixture
def base_url(policy: TokenPolicy) -> Iterator[str]:
    with serving(create_app(policy, length_reward(), config=SMALL, retry=None)) as url:
        yield url
