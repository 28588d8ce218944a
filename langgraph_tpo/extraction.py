"""Pull the new response out of an update generation.

Rules, in order:
1. One or more complete ``<improved_response>...</improved_response>`` blocks: the last
   non-empty block (models often draft, then finalise).
2. Only an opening tag: everything after the last opening tag.
3. Only a closing tag: everything before the first closing tag.
4. No tags: the whole text (the model ignored the delimiters).
Stray tags left inside are removed; surrounding whitespace is stripped; an empty
result is dropped. The kind of rule used is returned so the trajectory can count it.
"""

from __future__ import annotations

import re
from typing import Literal

from langgraph_tpo.prompts import UPDATE_END_TAG, UPDATE_START_TAG

Extraction = Literal["tagged", "open_tag_only", "close_tag_only", "untagged", "empty"]

_START = re.compile(re.escape(UPDATE_START_TAG), re.IGNORECASE)
_END = re.compile(re.escape(UPDATE_END_TAG), re.IGNORECASE)
# A block runs from the LAST opening tag before a closing tag: an echoed lone opening tag
# earlier in the text does not leak into the response.
_BLOCK = re.compile(
    re.escape(UPDATE_START_TAG)
    + r"((?:(?!"
    + re.escape(UPDATE_START_TAG)
    + r").)*?)"
    + re.escape(UPDATE_END_TAG),
    re.IGNORECASE | re.DOTALL,
)


def _clean(text: str) -> str:
    return _END.sub("", _START.sub("", text)).strip()


def extract_response(text: str | None) -> tuple[str | None, Extraction]:
    """Return ``(response, rule)``; ``response`` is None when nothing usable is left."""
    text = text or ""
    blocks = [_clean(b) for b in _BLOCK.findall(text)]
    blocks = [b for b in blocks if b]
    if blocks:
        return blocks[-1], "tagged"
    starts = list(_START.finditer(text))
    end = _END.search(text)
    if starts and not (end and end.start() > starts[-1].start()):
        response, rule = _clean(text[starts[-1].end() :]), "open_tag_only"
    elif end and not starts:
        response, rule = _clean(text[: end.start()]), "close_tag_only"
    else:
        response, rule = _clean(text), "untagged"
    return (response, rule) if response else (None, "empty")
