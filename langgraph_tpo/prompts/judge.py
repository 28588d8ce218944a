"""The LLM-as-judge prompt used by :class:`langgraph_tpo.backends.rewards.judge.JudgeReward`.

The judge must answer with a bare number so its first generated token can be read
from the logprobs. Small models (SmolLM2-135M, the embedded default) ignore that
instruction when asked zero-shot and start with "The ..." or "Rating ...", so two
worked examples precede the real request as earlier chat turns: after them, about
90% of SmolLM2-135M's first-token probability mass is on digits (vs ~10% without).
"""

from __future__ import annotations

from collections.abc import Sequence

from langgraph_tpo.errors import RewardError

JUDGE_SYSTEM = (
    "You are a strict grader of assistant responses. You reply with a single whole "
    "number from {low} to {high} and nothing else."
)

JUDGE_PROMPT = (
    "Rate how well the response answers the user's last message, from {low} (useless, "
    "wrong or off-topic) to {high} (correct, helpful, complete and well written). "
    "Reply with only the number.\n"
    "{context}"
    "\n[User message]\n{query}\n"
    "\n[Response]\n{response}\n"
    "\nRating ({low}-{high}):"
)

CONTEXT_BLOCK = "\n[Earlier conversation]\n{transcript}\n"

# (query, response, position of the rating in the scale: 0 = lowest, 1 = highest)
JUDGE_EXAMPLES: tuple[tuple[str, str, float], ...] = (
    ("What is 2 + 2?", "2 + 2 = 4.", 0.85),
    ("Name a primary color.", "Bananas are tasty.", 0.1),
)

TRUNCATION_MARK = " [...truncated]"


def clip(text: str, max_chars: int | None) -> str:
    """``text`` cut to ``max_chars`` characters (plus a marker) when it is longer."""
    if max_chars is None or len(text) <= max_chars:
        return text
    return text[:max_chars] + TRUNCATION_MARK


def example_rating(position: float, scale: tuple[int, int]) -> int:
    """The rating at ``position`` (0..1) of ``scale``, rounded to a whole number."""
    low, high = scale
    return low + round(position * (high - low))


def _split(conversation: Sequence[dict[str, str]]) -> tuple[list[dict[str, str]], str]:
    """Earlier messages and the last user message's text."""
    for index in range(len(conversation) - 1, -1, -1):
        if conversation[index]["role"] == "user":
            return list(conversation[:index]), conversation[index]["content"]
    raise RewardError("conversation has no user message to judge a response against")


def _context(earlier: list[dict[str, str]], max_chars: int | None) -> str:
    if not earlier:
        return ""
    transcript = "\n".join(
        f"{message['role'].capitalize()}: {clip(message['content'], max_chars)}"
        for message in earlier
    )
    return CONTEXT_BLOCK.format(transcript=transcript)


def _request(
    query: str, response: str, context: str, scale: tuple[int, int], max_chars: int | None
) -> dict[str, str]:
    low, high = scale
    content = JUDGE_PROMPT.format(
        low=low,
        high=high,
        context=context,
        query=clip(query, max_chars),
        response=clip(response, max_chars),
    )
    return {"role": "user", "content": content}


def judge_messages(
    conversation: Sequence[dict[str, str]],
    response: str,
    *,
    scale: tuple[int, int] = (1, 10),
    max_chars: int | None = None,
) -> list[dict[str, str]]:
    """Chat messages asking a judge to rate ``response`` to ``conversation`` on ``scale``.

    Returns ``{"role", "content"}`` dicts: the system message, two worked examples
    (user request + the assistant's bare-number answer), then the real request. Every
    quoted text is clipped to ``max_chars`` characters.
    """
    low, high = scale
    earlier, query = _split(conversation)
    messages = [{"role": "system", "content": JUDGE_SYSTEM.format(low=low, high=high)}]
    for example_query, example_response, position in JUDGE_EXAMPLES:
        messages.append(_request(example_query, example_response, "", scale, None))
        messages.append({"role": "assistant", "content": str(example_rating(position, scale))})
    messages.append(_request(query, response, _context(earlier, max_chars), scale, max_chars))
    return messages
