"""Cutting long texts to a token budget before they go into critique prompts."""

from __future__ import annotations

import re
from typing import Any, Protocol


class Tokenizer(Protocol):
    def encode(self, text: str, **kwargs: Any) -> list[int]: ...
    def decode(self, ids: list[int], **kwargs: Any) -> str: ...


# Words and single punctuation marks: close to subword token counts for English text,
# and never fewer pieces than tokens for it, so the cut stays within budget.
_PIECE = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def truncate_tokens(text: str, max_tokens: int, tokenizer: Tokenizer | None = None) -> str:
    """``text`` cut to at most ``max_tokens`` tokens (by ``tokenizer`` when given)."""
    if tokenizer is not None:
        ids = tokenizer.encode(text, add_special_tokens=False)
        if len(ids) <= max_tokens:
            return text
        return tokenizer.decode(ids[:max_tokens], skip_special_tokens=True)
    if len(text) <= max_tokens:  # every piece is at least one character
        return text
    for count, match in enumerate(_PIECE.finditer(text), start=1):
        if count == max_tokens:
            return text[: match.end()]
    return text
