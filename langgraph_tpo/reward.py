"""The reward protocol: how the graph scores candidates.

A reward scores many (conversation, response) pairs in one call. A conversation
is a list of OpenAI-style messages (``{"role": ..., "content": ...}``) ending with
the user turn that the response answers. Plain callables and LangChain runnables
are adapted to the protocol by :func:`as_batch_reward`.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import numbers
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeAlias, runtime_checkable

from langchain_core.messages import BaseMessage, ChatMessage
from langchain_core.runnables import Runnable

from langgraph_tpo.errors import RewardError, is_transient

Message: TypeAlias = dict[str, str]
Conversation: TypeAlias = list[Message]
RewardPair: TypeAlias = tuple[Conversation, str]
ScoreFn: TypeAlias = Callable[[str, str], float] | Callable[[str, str], Awaitable[float]]
# The chat role of each LangChain message type a conversation may hold.
CHAT_ROLES = {"human": "user", "ai": "assistant", "system": "system"}


def chat_role(message: BaseMessage) -> str | None:
    """The chat role of a LangChain message (a ``ChatMessage`` keeps its own); None for
    the types a conversation does not hold (tool and function messages)."""
    return message.role if isinstance(message, ChatMessage) else CHAT_ROLES.get(message.type)


@runtime_checkable
class BatchReward(Protocol):
    """Scores a batch of (conversation, response) pairs; one float per pair, in order."""

    async def ascore_batch(self, pairs: Sequence[RewardPair]) -> list[float]: ...


def last_user_text(conversation: Conversation) -> str:
    """The content of the last user message: the "query" of a single-query reward."""
    for message in reversed(conversation):
        if message["role"] == "user":
            return message["content"]
    raise RewardError("conversation has no user message to score a response against")


class CallableReward:
    """Adapts ``fn(query, response) -> float`` (sync or async) to :class:`BatchReward`.

    Sync functions run in a worker thread so a slow scorer does not block the event loop.
    """

    def __init__(self, fn: ScoreFn) -> None:
        self.fn = fn
        self._is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
            type(fn).__call__
        )

    async def _score_one(self, conversation: Conversation, response: str) -> float:
        query = last_user_text(conversation)
        if self._is_async:
            return await self.fn(query, response)  # type: ignore[misc]
        return await asyncio.to_thread(self.fn, query, response)  # type: ignore[arg-type]

    async def _score_indexed(self, index: int, conversation: Conversation, response: str) -> float:
        try:
            return await self._score_one(conversation, response)
        except RewardError:
            raise
        except Exception as exc:
            preview = response[:80].replace("\n", " ")
            error = RewardError(
                f"reward failed on candidate {index} ({preview!r}): {type(exc).__name__}: {exc}"
            )
            error.transient = is_transient(exc)
            raise error from exc

    async def ascore_batch(self, pairs: Sequence[RewardPair]) -> list[float]:
        scored = (self._score_indexed(i, c, r) for i, (c, r) in enumerate(pairs))
        return list(await asyncio.gather(*scored))


class RunnableReward:
    """Adapts a LangChain runnable to :class:`BatchReward` with one ``abatch`` call.

    The runnable receives ``{"query", "response", "conversation"}`` and returns a real
    number (or a dict or object with a numeric ``score``); a string such as ``"7"`` (what a
    chat model answers) is not a score: parse it in the runnable.
    """

    def __init__(self, runnable: Runnable) -> None:
        self.runnable = runnable

    async def ascore_batch(self, pairs: Sequence[RewardPair]) -> list[float]:
        inputs = [{"query": last_user_text(c), "response": r, "conversation": c} for c, r in pairs]
        outputs = await self.runnable.abatch(inputs)
        return [_as_number(o) for o in outputs]


def _as_number(value: Any) -> Any:
    """The score inside a runnable's output (checked by :func:`check_scores`)."""
    if isinstance(value, dict) and "score" in value:
        return value["score"]
    if hasattr(value, "score"):
        return value.score
    return value


def is_real_number(value: Any) -> bool:
    """An int or float (numpy's included), not a bool, a string or None."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool | str)


def as_batch_reward(reward: BatchReward | Runnable | ScoreFn) -> BatchReward:
    """Wrap any supported reward in the :class:`BatchReward` protocol."""
    if isinstance(reward, BatchReward):
        return reward
    if isinstance(reward, Runnable):
        return RunnableReward(reward)
    if callable(reward):
        return CallableReward(reward)
    raise TypeError(
        f"reward must be a callable (query, response) -> float, a LangChain runnable, "
        f"or an object with an async ascore_batch(pairs) method; got {type(reward).__name__}"
    )


def check_scores(scores: Sequence[Any], responses: Sequence[str]) -> list[float]:
    """Validate one batch of scores: one finite number per response, else :class:`RewardError`."""
    if len(scores) != len(responses):
        raise RewardError(f"reward returned {len(scores)} scores for {len(responses)} candidates")
    checked: list[float] = []
    for index, (score, response) in enumerate(zip(scores, responses, strict=True)):
        real = is_real_number(score)
        value = float(score) if real else math.nan
        if not math.isfinite(value):
            preview = response[:80].replace("\n", " ")
            what = "" if real else f": a {type(score).__name__} is not a score"
            raise RewardError(
                f"reward returned {score!r} for candidate {index} ({preview!r}){what}; "
                "scores must be finite real numbers (int or float)"
            )
        checked.append(value)
    return checked
