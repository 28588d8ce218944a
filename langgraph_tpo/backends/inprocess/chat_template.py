"""Render (conversation, response) pairs the way reward models are trained to read them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langgraph_tpo.reward import Conversation, RewardPair


def tokenizer_adds_bos(tokenizer: Any) -> bool:
    """True when tokenizing plain text already prepends the BOS token."""
    bos_id = getattr(tokenizer, "bos_token_id", None)
    if bos_id is None:
        return False
    ids = tokenizer("a", add_special_tokens=True)["input_ids"]
    return bool(ids) and ids[0] == bos_id


def render_for_reward(tokenizer: Any, conversation: Conversation, response: str) -> str:
    """The conversation plus the assistant's response, through the tokenizer's chat template.

    The assistant turn is included (no generation prompt). When the tokenizer adds
    BOS itself, a leading BOS in the rendered text is removed so it is not doubled
    (the reference implementation does the same; it strips every BOS, which breaks
    templates whose BOS is also a turn marker, so only the leading one goes here).
    """
    messages = [*conversation, {"role": "assistant", "content": response}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
    bos = getattr(tokenizer, "bos_token", None)
    if bos and text.startswith(bos) and tokenizer_adds_bos(tokenizer):
        text = text[len(bos) :]
    return text


def render_batch_for_reward(tokenizer: Any, pairs: Sequence[RewardPair]) -> list[str]:
    return [
        render_for_reward(tokenizer, conversation, response) for conversation, response in pairs
    ]
