"""The reward protocol: how the graph scores candidates.

A reward scores many (conversation, response) pairs in one call. A conversation
is a list of OpenAI-style messages (``{"role": ..., "content": ...}``) ending with
the user turn that the response answers. Plain callables and LangChain runnables
are adapted to the protocol by :func:`as_batch_reward`.

A reward that also reads fields of the data row (a reference answer, a category) names
them in a ``row_fields`` attribute and takes the row as a keyword:
``async ascore_batch(pairs, *, row)``. The graph's ``row`` input (``{"query": ...,
"row": {"reference": "1/2"}}``) reaches only such rewards; a field they name that the row
lacks is a :class:`~langgraph_tpo.errors.ConfigError` before any model call.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import numbers
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, TypeAlias, runtime_checkable

from langchain_core.messages import BaseMessage, ChatMessage
from langchain_core.runnables import Runnable

from langgraph_tpo.errors import ConfigError, RewardError, is_transient

Message: TypeAlias = dict[str, str]
Conversation: TypeAlias = list[Message]
RewardPair: TypeAlias = tuple[Conversation, str]
Row: TypeAlias = Mapping[str, Any]
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


@runtime_checkable
class RowReward(Protocol):
    """A :class:`BatchReward` that also reads the data row's fields named in ``row_fields``."""

    row_fields: tuple[str, ...]

    async def ascore_batch(self, pairs: Sequence[RewardPair], *, row: Row) -> list[float]: ...


def row_fields_of(reward: Any) -> tuple[str, ...]:
    """The data-row fields ``reward`` reads (its ``row_fields``); () when it reads none."""
    return tuple(getattr(reward, "row_fields", None) or ())


def check_row(fields: Sequence[str], row: Any, where: str = "the graph input 'row'") -> None:
    """A ConfigError naming each of ``fields`` that ``row`` lacks (or holds as null)."""
    if not fields:
        return
    if not isinstance(row, Mapping):
        given = "no 'row'" if row is None else f"a {type(row).__name__} as 'row'"
        raise ConfigError(
            f"the reward reads the data row's field(s) {', '.join(map(repr, fields))}, but the "
            f"input has {given}: pass {{'row': {{{fields[0]!r}: ...}}}} with the query"
        )
    missing = [name for name in fields if row.get(name) is None]
    if missing:
        raise ConfigError(
            f"{where}: field(s) {', '.join(map(repr, missing))} missing, which the reward reads "
            f"(the row has {', '.join(map(repr, row)) or 'no fields'})"
        )


async def score_with_row(
    reward: BatchReward, pairs: Sequence[RewardPair], row: Row | None
) -> list[float]:
    """``reward``'s scores of ``pairs``, given ``row`` when it reads row fields."""
    fields = row_fields_of(reward)
    if not fields:
        return await reward.ascore_batch(pairs)
    check_row(fields, row)
    return await reward.ascore_batch(pairs, row=row)  # type: ignore[call-arg]


class WeightedReward:
    """The weighted sum of several rewards, e.g. a reward model plus a verifier.

    Each part scores the whole batch (concurrently); the parts that read data-row fields
    get the row, and the sum reads the union of their fields.
    """

    def __init__(self, parts: Sequence[tuple[BatchReward | Runnable | ScoreFn, float]]) -> None:
        if not parts:
            raise ConfigError("a weighted reward needs at least one (reward, weight) part")
        for _, weight in parts:
            if not is_real_number(weight) or not math.isfinite(weight):
                raise ConfigError(f"reward weights must be finite numbers, got {weight!r}")
        self.parts = [(as_batch_reward(reward), float(weight)) for reward, weight in parts]
        fields = (f for reward, _ in self.parts for f in row_fields_of(reward))
        self.row_fields = tuple(dict.fromkeys(fields))

    async def ascore_batch(
        self, pairs: Sequence[RewardPair], *, row: Row | None = None
    ) -> list[float]:
        batches = await asyncio.gather(*(score_with_row(r, pairs, row) for r, _ in self.parts))
        responses = [response for _, response in pairs]
        checked = [check_scores(list(scores), responses) for scores in batches]
        weights = [weight for _, weight in self.parts]
        columns = zip(*checked, strict=True)  # one column per pair: each part's score
        return [sum(w * s for w, s in zip(weights, column, strict=True)) for column in columns]


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
