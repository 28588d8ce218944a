"""Instant fake models for the CLI, Studio and example tests, through the factory options.

``--policy-factory testsupport.fake_backends:policy`` (or ``TPO_POLICY_FACTORY``) runs a
:class:`~langgraph_tpo.fakes.FakeNPolicy` whose texts vary per prompt and improve on the
chosen response in ``update``; ``--reward-factory testsupport.fake_backends:reward`` a length
reward (words per response). :data:`FAKE_FACTORIES` holds both as environment variables.
Optional knobs, read when the policy is built:

* ``TPO_FAKE_DELAY=0.2``: seconds each policy request takes (so kill tests have time);
* ``TPO_FAKE_LOG=path``: append one JSON line per policy request (``kind``, ``query`` of
  sample requests, ``n``, sampling ``kwargs``, ``in_flight``: requests running at once);
* ``TPO_FAKE_FAIL=text``: sampling fails for prompts containing ``text``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from langgraph_tpo.fakes import FakeBatchReward, FakeNPolicy
from langgraph_tpo.prompts import UPDATE_END_TAG, UPDATE_START_TAG

DELAY_ENV = "TPO_FAKE_DELAY"
LOG_ENV = "TPO_FAKE_LOG"
FAIL_ENV = "TPO_FAKE_FAIL"
WORD = "good"
_QUALITY = re.compile(rf"answer:((?: {WORD}\d+)+)")
POLICY_FACTORY = "testsupport.fake_backends:policy"
REWARD_FACTORY = "testsupport.fake_backends:reward"
FAKE_FACTORIES = {"TPO_POLICY_FACTORY": POLICY_FACTORY, "TPO_REWARD_FACTORY": REWARD_FACTORY}
REPO_ROOT = Path(__file__).resolve().parents[1]
_NONCE = re.compile(r"(?<=improved_response)_[0-9a-f]+")


def fake_backend_env(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The factory variables, and a PYTHONPATH with the repository root so that a ``tpo``
    subprocess (or ``langgraph dev``) can import this module."""
    path = os.pathsep.join(p for p in (str(REPO_ROOT), environ.get("PYTHONPATH", "")) if p)
    return {**FAKE_FACTORIES, "PYTHONPATH": path}


def _rng(*parts: Any) -> random.Random:
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _answer(words: int) -> str:
    # numbered, so a long answer is not a loop (langgraph_tpo.degeneration) but still
    # counts its words: "answer: good1 good2 good3"
    return "answer:" + "".join(f" {WORD}{i}" for i in range(1, max(1, words) + 1))


def _best_in(messages: list[BaseMessage]) -> int:
    """Words of the best answer quoted in the prompt (the chosen response)."""
    runs = [len(m.split()) for msg in messages for m in _QUALITY.findall(str(msg.content))]
    return max(runs, default=1)


class FakeTPOPolicy(FakeNPolicy):
    """FakeNPolicy with per-prompt varied answers, an optional delay and a request log."""

    delay: float = 0.0
    log_path: str | None = None
    fail_on: str | None = None
    in_flight: int = 0

    def _draw(
        self, kind: str, messages: list[BaseMessage], n: int, kwargs: dict[str, Any]
    ) -> list[str]:
        if kind == "sample" and self.fail_on and self.fail_on in str(messages[-1].content):
            raise RuntimeError(f"fake failure for a prompt containing {self.fail_on!r}")
        self.calls.append({"kind": kind, "n": n, "kwargs": kwargs, "messages": messages})
        # the delimiters' nonce is random per run: leave it out so answers stay deterministic
        key = _NONCE.sub("", "\n".join(str(m.content) for m in messages))
        self._log(kind, str(messages[-1].content) if kind == "sample" else None, n, kwargs)
        return [self._text(kind, messages, key, i) for i in range(n)]

    def _package(self, texts: list[str], messages: list[BaseMessage]) -> ChatResult:
        prompt_words = len("\n".join(str(m.content) for m in messages).split())
        return ChatResult(
            generations=[
                ChatGeneration(
                    message=AIMessage(
                        t,
                        usage_metadata={
                            "input_tokens": prompt_words,
                            "output_tokens": len(t.split()),
                            "total_tokens": prompt_words + len(t.split()),
                        },
                    )
                )
                for t in texts
            ]
        )

    def _text(self, kind: str, messages: list[BaseMessage], key: str, index: int) -> str:
        rng = _rng(kind, key, index)
        if kind == "sample":
            return _answer(rng.randint(3, 30))
        if kind == "update":
            better = _best_in(messages) + rng.randint(-6, 8)
            return f"{UPDATE_START_TAG}{_answer(better)}{UPDATE_END_TAG}"
        return f"{kind}: make it longer"

    def _log(self, kind: str, query: str | None, n: int, kwargs: dict[str, Any]) -> None:
        if not self.log_path:
            return
        sampling = {k: v for k, v in kwargs.items() if isinstance(v, int | float | str)}
        record = {
            "kind": kind,
            "query": query,
            "n": n,
            "kwargs": sampling,
            "in_flight": self.in_flight,
            "pid": os.getpid(),
        }
        line = json.dumps(record) + "\n"
        fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    async def _agenerate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        self.in_flight += 1
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            return self._generate(messages, stop, run_manager, **kwargs)
        finally:
            self.in_flight -= 1


def policy() -> BaseChatModel:
    """The fake policy, configured from ``TPO_FAKE_DELAY``, ``TPO_FAKE_LOG``, ``TPO_FAKE_FAIL``."""
    return FakeTPOPolicy(
        delay=float(os.environ.get(DELAY_ENV) or 0),
        log_path=os.environ.get(LOG_ENV) or None,
        fail_on=os.environ.get(FAIL_ENV) or None,
    )


def reward() -> FakeBatchReward:
    """A length reward: the number of words of the response."""
    return FakeBatchReward(lambda text: float(len(text.split())))


def _math_answer(kind: str, call: int, index: int) -> str:
    """Samples alternate between two final answers (4 and 5/6, as LaTeX); updates say 4."""
    if kind == "update":
        return f"{UPDATE_START_TAG}So the answer is $\\boxed{{4}}$.{UPDATE_END_TAG}"
    if kind in ("loss", "gradient"):
        return f"{kind}: check the arithmetic"
    return ["The answer is $\\boxed{4}$.", "We get $\\boxed{\\dfrac{5}{6}}$."][index % 2]


class FakeMathPolicy(FakeTPOPolicy):
    """The fake policy's request log and options, with answers for the MATH-500 fixture."""

    def _text(self, kind: str, messages: list[BaseMessage], key: str, index: int) -> str:
        return _math_answer(kind, 0, index)


def math_policy() -> BaseChatModel:
    """A policy for the MATH-500 fixture: its samples answer 4 or 5/6 in ``\\boxed{}``;
    requests are logged to ``TPO_FAKE_LOG`` as :func:`policy`'s are."""
    return FakeMathPolicy(log_path=os.environ.get(LOG_ENV) or None)
