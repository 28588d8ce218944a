"""Pull the new response out of an update generation.

The delimiters are the run's (``PromptSet.delimiters(nonce)``): only they count, so a tag
without the nonce, e.g. ``<improved_response>`` inside a code block, is ordinary text.

``delimited`` (the default) and ``lenient`` rules, in order:
1. One or more complete start...end blocks: the last non-empty block (models often draft,
   then finalise; an echo of the prompt's format line or of a quoted text comes first).
2. Only an opening delimiter after the last closing one: everything after it.

Then ``delimited`` drops the output (``no_open_tag``), and ``lenient`` goes on:

3. Only a closing delimiter: everything before the first one.
4. No delimiter: the whole text (the model ignored the instruction; commentary about the
   rewrite, or a meta-text, then enters the cache as a response).

``strict`` (the reference implementation's rule): the text after the first opening
delimiter, up to the next closing one; an output without an opening delimiter is dropped
(``no_open_tag``).

Delimiters left inside are removed; surrounding whitespace is stripped; an empty result is
dropped. The rule used is returned so the trajectory can count it.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal

from langgraph_tpo.prompts import UPDATE_END_TAG, UPDATE_START_TAG

Extraction = Literal[
    "tagged",
    "open_tag_only",
    "close_tag_only",
    "untagged",
    "empty",
    "no_open_tag",
    "scaffolding",
    "degenerate",
]
PLAIN_DELIMITERS = (UPDATE_START_TAG, UPDATE_END_TAG)


@lru_cache(maxsize=64)
def _patterns(delimiters: tuple[str, str]) -> tuple[re.Pattern[str], ...]:
    start, end = (re.escape(d) for d in delimiters)
    return (
        re.compile(start, re.IGNORECASE),
        re.compile(end, re.IGNORECASE),
        # A block runs from the LAST opening delimiter before a closing one: an echoed lone
        # opening delimiter earlier in the text does not leak into the response.
        re.compile(start + r"((?:(?!" + start + r").)*?)" + end, re.IGNORECASE | re.DOTALL),
    )


def _clean(text: str, start: re.Pattern[str], end: re.Pattern[str]) -> str:
    return end.sub("", start.sub("", text)).strip()


def extract_response(
    text: str | None,
    delimiters: tuple[str, str] = PLAIN_DELIMITERS,
    *,
    rule: Literal["delimited", "lenient", "strict"] = "delimited",
) -> tuple[str | None, Extraction]:
    """Return ``(response, rule_used)``; ``response`` is None when nothing usable is left."""
    text = text or ""
    start, end, block = _patterns(delimiters)
    if rule == "strict":
        return _strict(text, start, end)
    blocks = [b for b in (_clean(b, start, end) for b in block.findall(text)) if b]
    if blocks:
        return blocks[-1], "tagged"
    starts = list(start.finditer(text))
    closing = end.search(text)
    used: Extraction
    if starts and not (closing and closing.start() > starts[-1].start()):
        response, used = _clean(text[starts[-1].end() :], start, end), "open_tag_only"
    elif rule == "delimited":
        return None, "no_open_tag" if text.strip() and not starts else "empty"
    elif closing and not starts:
        response, used = _clean(text[: closing.start()], start, end), "close_tag_only"
    else:
        response, used = _clean(text, start, end), "untagged"
    return (response, used) if response else (None, "empty")


def _strict(
    text: str, start: re.Pattern[str], end: re.Pattern[str]
) -> tuple[str | None, Extraction]:
    opening = start.search(text)
    if opening is None:
        return None, "no_open_tag"
    rest = text[opening.end() :]
    closing = end.search(rest)
    response = _clean(rest[: closing.start()] if closing else rest, start, end)
    if not response:
        return None, "empty"
    return response, "tagged" if closing else "open_tag_only"
