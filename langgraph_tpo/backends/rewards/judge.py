"""LLM-as-judge: a chat model rates each response, and the rating is the reward."""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage

from langgraph_tpo.errors import ConfigError, RewardError
from langgraph_tpo.policy import STEP_HEADER, is_openai_compatible, step_tag
from langgraph_tpo.prompts.judge import judge_messages
from langgraph_tpo.reward import Conversation, RewardPair, check_scores

# Judge calls run under the reward node's callbacks (inherited from the context) and say so.
JUDGE_RUN: dict[str, Any] = {
    "tags": [step_tag("judge")],
    "metadata": {"tpo_step": "judge"},
    "run_name": step_tag("judge"),
}

logger = logging.getLogger(__name__)

_NUMBER = re.compile(r"(?<![\d.])\d+(?:\.\d+)?")
_LEADING = re.compile(r"^\W*?(\d+(?:\.\d+)?)")
_LABELLED = re.compile(
    r"(?:rating|score)\s*(?:\(\s*\d+\s*-\s*\d+\s*\))?\s*(?:is|of|[:=])?\s*(\d+(?:\.\d+)?)",
    re.IGNORECASE,
)
_OUT_OF = re.compile(r"(\d+(?:\.\d+)?)\s*(?:/|out of)\s*\d+", re.IGNORECASE)


@dataclass(frozen=True)
class Verdict:
    """One judged response: its score, and "logprobs" or "parsed" for how it was read."""

    score: float
    method: str


def parse_rating(text: str, scale: tuple[int, int]) -> float | None:
    """The rating written in ``text`` (within ``scale``), or None.

    Tried in order: a number at the very start, "Rating: N" / "Score: N", "N/10", then
    the first number in range anywhere.
    """
    low, high = scale
    for pattern in (_LEADING, _LABELLED, _OUT_OF):
        match = pattern.search(text)
        if match and low <= float(match.group(1)) <= high:
            return float(match.group(1))
    for match in _NUMBER.finditer(text):
        if low <= float(match.group(0)) <= high:
            return float(match.group(0))
    return None


def _entries(message: BaseMessage) -> list[Mapping[str, Any]]:
    """The OpenAI-format logprob entries of a reply, or [] when there are none."""
    logprobs = message.response_metadata.get("logprobs")
    if isinstance(logprobs, Mapping):
        content = logprobs.get("content")
        return list(content) if content else []
    return []


def _as_int(token: str) -> int | None:
    stripped = token.strip()
    return int(stripped) if stripped.isdigit() else None


def _candidates(entry: Mapping[str, Any]) -> list[tuple[str, float]]:
    top = [(t["token"], t["logprob"]) for t in entry.get("top_logprobs") or []]
    return [*top, (entry["token"], entry["logprob"])]


def _value_probs(entry: Mapping[str, Any], scale: tuple[int, int]) -> dict[int, float]:
    """Probability of each rating value among one position's tokens (summed over spellings)."""
    low, high = scale
    seen: dict[str, float] = {}
    for token, logprob in _candidates(entry):
        seen.setdefault(token, logprob)
    probs: dict[int, float] = {}
    for token, logprob in seen.items():
        value = _as_int(token)
        if value is not None and low <= value <= high and math.isfinite(logprob):
            probs[value] = probs.get(value, 0.0) + math.exp(logprob)
    return probs


def _split_ten(
    probs: dict[int, float], following: Mapping[str, Any] | None, scale: tuple[int, int]
) -> dict[int, float]:
    """Tokenizers that spell 10 as "1","0": split P("1") by P("0" | "1") at the next position."""
    if 10 in probs or not (scale[0] <= 1 and scale[1] >= 10) or following is None:
        return probs
    p_zero = sum(math.exp(lp) for tok, lp in dict(_candidates(following)).items() if tok == "0")
    p_one = probs.get(1, 0.0)
    return {**probs, 1: p_one * (1 - p_zero), 10: p_one * p_zero}


def _greedy_number(entries: list[Mapping[str, Any]], start: int) -> tuple[int, int]:
    """The number spelled by consecutive digit tokens from ``start``, and how many tokens."""
    digits, end = "", start
    while end < len(entries):
        token = entries[end]["token"]
        if not token.strip().isdigit() or (end > start and token != token.strip()):
            break
        digits += token.strip()
        end += 1
    return int(digits), end - start


def logprob_rating(
    entries: list[Mapping[str, Any]], text_rating: float | None, scale: tuple[int, int]
) -> float | None:
    """Expected rating under the judge's distribution at the rating token, or None.

    The rating token is the first generated token that is a number; it is used only when
    the number it starts agrees with the rating parsed from the text.
    """
    start = next((i for i, e in enumerate(entries) if _as_int(e["token"]) is not None), None)
    if start is None or text_rating is None:
        return None
    number, length = _greedy_number(entries, start)
    following = entries[start + 1] if start + 1 < len(entries) else None
    if number != text_rating:
        return None
    probs = _value_probs(entries[start], scale)
    if number == 1 or (number == 10 and length == 2):
        probs = _split_ten(probs, following, scale)
    elif length != 1:
        return None
    total = sum(probs.values())
    if total <= 0:
        return None
    return sum(value * p for value, p in probs.items()) / total


class JudgeReward:
    """Rewards from an LLM judge: ``chat_model`` rates each response on ``scale``.

    Reads: ``(conversation, response)`` pairs; each becomes one judge request
    (:func:`langgraph_tpo.prompts.judge.judge_messages`) sent at temperature 0 with
    ``logprobs=True, top_logprobs=10`` (works for :class:`TransformersChatModel` and for
    ``ChatOpenAI`` against vLLM/OpenAI; pass ``request_logprobs=False`` for models that
    reject those kwargs). At most ``concurrency`` requests run at once.
    Returns: per pair, the probability-weighted mean rating over the rating tokens found at
    the rating position (renormalized), or else the number parsed from the reply's text.
    ``last_methods`` says which ("logprobs" or "parsed") for each pair of the last batch.
    A reply with no rating in range is retried ``max_retries`` times (new seed, slightly
    higher temperature); then, with ``unreadable="raise"``, :class:`RewardError` names the
    candidate and the replies, and with ``unreadable="lowest"`` the candidate gets the lowest
    rating of the scale (method "unreadable", logged as a warning), so one reply a small
    judge cannot rate does not end the run.
    """

    def __init__(
        self,
        chat_model: BaseChatModel,
        *,
        scale: tuple[int, int] = (1, 10),
        max_retries: int = 2,
        concurrency: int = 4,
        max_response_chars: int = 4000,
        max_tokens: int = 8,
        request_logprobs: bool = True,
        unreadable: Literal["raise", "lowest"] = "raise",
    ) -> None:
        low, high = scale
        if not (isinstance(low, int) and isinstance(high, int) and low < high):
            raise ConfigError(
                f"scale must be two whole numbers (low, high) with low < high: {scale}"
            )
        if max_retries < 0 or concurrency < 1 or max_tokens < 1:
            raise ConfigError("max_retries must be >= 0, concurrency and max_tokens >= 1")
        if unreadable not in ("raise", "lowest"):
            raise ConfigError(f"unreadable must be 'raise' or 'lowest', got {unreadable!r}")
        self.chat_model = chat_model
        self.scale = (low, high)
        self.max_retries = max_retries
        self.concurrency = concurrency
        self.max_response_chars = max_response_chars
        self.max_tokens = max_tokens
        self.request_logprobs = request_logprobs
        self.unreadable = unreadable
        self.last_methods: list[str] = []

    def messages(self, conversation: Conversation, response: str) -> list[dict[str, str]]:
        """The judge request for one pair."""
        return judge_messages(
            conversation, response, scale=self.scale, max_chars=self.max_response_chars
        )

    def _call_kwargs(self, attempt: int) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"temperature": 0.0, "max_tokens": self.max_tokens}
        if "n" in type(self.chat_model).model_fields:  # a policy model may default to n > 1
            kwargs["n"] = 1
        if attempt:
            kwargs.update(temperature=min(1.0, 0.3 * attempt), seed=attempt)
        if self.request_logprobs:
            kwargs.update(logprobs=True, top_logprobs=10)
        if is_openai_compatible(self.chat_model):
            kwargs["extra_headers"] = {STEP_HEADER: "judge"}
        return kwargs

    async def _ask(self, messages: list[dict[str, str]], attempt: int, index: int) -> BaseMessage:
        try:
            return await self.chat_model.ainvoke(
                messages, config=JUDGE_RUN, **self._call_kwargs(attempt)
            )
        except Exception as exc:
            raise RewardError(
                f"judge call for candidate {index} failed: {type(exc).__name__}: {exc}"
            ) from exc

    def read(self, reply: BaseMessage) -> Verdict | None:
        """The verdict in one judge reply, or None when it holds no rating in range."""
        text = reply.content if isinstance(reply.content, str) else str(reply.text)
        parsed = parse_rating(text, self.scale)
        expected = logprob_rating(_entries(reply), parsed, self.scale)
        if expected is not None:
            return Verdict(expected, "logprobs")
        return None if parsed is None else Verdict(parsed, "parsed")

    async def judge(self, conversation: Conversation, response: str, index: int = 0) -> Verdict:
        """Rate one response, retrying unreadable replies; RewardError when all fail."""
        messages = self.messages(conversation, response)
        replies: list[str] = []
        for attempt in range(self.max_retries + 1):
            reply = await self._ask(messages, attempt, index)
            verdict = self.read(reply)
            if verdict is not None:
                return verdict
            replies.append(repr(reply.content)[:200])
        problem = (
            f"judge gave no rating in {self.scale[0]}-{self.scale[1]} for candidate {index} "
            f"after {len(replies)} attempts; it replied: {'; '.join(replies)}"
        )
        if self.unreadable == "raise":
            raise RewardError(problem)
        logger.warning("%s; scored %s, the lowest rating", problem, self.scale[0])
        return Verdict(float(self.scale[0]), "unreadable")

    async def ascore_batch(self, pairs: Sequence[RewardPair]) -> list[float]:
        """One judge score per pair, in order."""
        semaphore = asyncio.Semaphore(self.concurrency)

        async def bounded(index: int, conversation: Conversation, response: str) -> Verdict:
            async with semaphore:
                return await self.judge(conversation, response, index)

        verdicts = await asyncio.gather(*(bounded(i, c, r) for i, (c, r) in enumerate(pairs)))
        self.last_methods = [v.method for v in verdicts]
        return check_scores([v.score for v in verdicts], [r for _, r in pairs])
