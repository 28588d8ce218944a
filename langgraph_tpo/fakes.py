"""Deterministic, instant fake models for unit tests and overhead benchmarks.

They are fakes for testing graph logic only; real runs use the backends. They tell the TPO
steps apart by the metadata every policy call carries (``tpo_step``), never by the
prompt's wording, so they work with any prompt set. Responders write update answers
between the plain tags ``<improved_response>``...``</improved_response>``; the fakes put
the run's delimiters (metadata ``tpo_delimiters``) in their place.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

from langgraph_tpo.policy import PENALTIES
from langgraph_tpo.prompts import UPDATE_END_TAG, UPDATE_START_TAG
from langgraph_tpo.reward import RewardPair

Responder = Callable[[str, int, int], str]  # (kind, call number of that kind, sample index)
KINDS = {"textual_loss": "loss", "textual_gradient": "gradient"}  # step -> short kind


def call_metadata(run_manager: Any) -> dict[str, Any]:
    """The metadata of the model call being run (empty outside LangChain's callbacks)."""
    return dict(getattr(run_manager, "metadata", None) or {})


def step_kind(run_manager: Any) -> str:
    """Which TPO step made the call: sample, loss, gradient or update (sample when unlabelled)."""
    step = call_metadata(run_manager).get("tpo_step", "sample")
    return KINDS.get(step, step)


def with_delimiters(text: str, run_manager: Any) -> str:
    """``text`` with the plain tags replaced by the run's update delimiters."""
    delimiters = call_metadata(run_manager).get("tpo_delimiters")
    if not delimiters:
        return text
    start, end = delimiters
    return text.replace(UPDATE_START_TAG, start).replace(UPDATE_END_TAG, end)


def default_responder(kind: str, call: int, index: int) -> str:
    if kind == "update":
        return f"{UPDATE_START_TAG}improved answer {call}.{index}{UPDATE_END_TAG}"
    if kind in ("loss", "gradient"):
        return f"{kind} text {call}"
    return f"answer {index}"


class FakePolicy(BaseChatModel):
    """Answers by prompt kind and records every call (kind, n, kwargs, messages).

    One generation per request: ``call`` is the number of earlier requests of the same
    kind and ``index`` the number of earlier generations of that kind. Calls run in order
    on the event loop (no threads), so concurrent requests are answered deterministically.
    """

    responder: Responder = default_responder
    calls: list[dict[str, Any]] = Field(default_factory=list)
    counts: dict[str, list[int]] = Field(default_factory=dict)  # kind -> [requests, generations]

    @property
    def _llm_type(self) -> str:
        return "fake-tpo-policy"

    def _draw(
        self, kind: str, messages: list[BaseMessage], n: int, kwargs: dict[str, Any]
    ) -> list[str]:
        call, drawn = self.counts.setdefault(kind, [0, 0])
        first = 0 if n > 1 else drawn
        self.counts[kind] = [call + 1, drawn + n]
        self.calls.append({"kind": kind, "n": n, "kwargs": kwargs, "messages": messages})
        return [self.responder(kind, call, first + i) for i in range(n)]

    def _n(self, kwargs: dict[str, Any]) -> int:
        return 1

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        texts = self._draw(step_kind(run_manager), messages, self._n(kwargs), kwargs)
        return self._package([with_delimiters(t, run_manager) for t in texts], messages)

    def _package(self, texts: list[str], messages: list[BaseMessage]) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(t)) for t in texts])

    async def _agenerate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        return self._generate(messages, stop, run_manager, **kwargs)

    def count(self, kind: str | None = None) -> int:
        """Generations drawn (of one kind, or all)."""
        return sum(c["n"] for c in self.calls if kind is None or c["kind"] == kind)


class FakeNPolicy(FakePolicy):
    """Like :class:`FakePolicy`, but draws ``n`` samples in one request (as ChatOpenAI does).

    ``call`` is then the round (0 for the first update, 1 for the second, ...) and
    ``index`` the sample's position in the request.
    """

    n: int = 1

    def _n(self, kwargs: dict[str, Any]) -> int:
        return int(kwargs.get("n", self.n))


class FakePenaltyPolicy(FakeNPolicy):
    """Like :class:`FakeNPolicy`, and declares (``SAMPLING_KWARGS``, as the in-process
    models do) that it applies the repetition penalties, so a config that sets them runs;
    they are recorded with the other kwargs of each call."""

    SAMPLING_KWARGS: ClassVar[tuple[str, ...]] = (
        "n", "temperature", "top_p", "max_tokens", "seed", *PENALTIES,
    )  # fmt: skip


class FakeBatchReward:
    """A batch reward from ``score(text) -> float``; records each batch it is asked for."""

    def __init__(self, score: Callable[[str], float] = lambda text: float(len(text))) -> None:
        self.score = score
        self.batches: list[list[str]] = []

    async def ascore_batch(self, pairs: Sequence[RewardPair]) -> list[float]:
        texts = [response for _, response in pairs]
        self.batches.append(texts)
        return [self.score(t) for t in texts]


class InstantPolicy(BaseChatModel):
    """The cheapest possible policy for overhead benchmarks: canned texts, ``n`` per request."""

    n: int = 1

    @property
    def _llm_type(self) -> str:
        return "instant"

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        text = "answer"
        if step_kind(run_manager) == "update":
            text = with_delimiters(_CANNED_UPDATE, run_manager)
        message = AIMessage(text)
        return ChatResult(generations=[ChatGeneration(message=message)] * kwargs.get("n", 1))

    async def _agenerate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        return self._generate(messages, stop, run_manager, **kwargs)


_CANNED_UPDATE = f"{UPDATE_START_TAG}better answer{UPDATE_END_TAG}"
