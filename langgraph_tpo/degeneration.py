"""Recognise responses that are mostly repetition (a policy stuck in a loop).

A response is **degenerate** when either share below reaches :data:`LOOP_THRESHOLD` (one
half):

- **repeated lines**: among its non-empty lines (at least :data:`MIN_LINES`), compared
  with case and surrounding spaces and punctuation ignored, the share that repeat a line
  seen earlier in the text;
- **repeated word 4-grams**: among its runs of four consecutive words (with at least
  :data:`MIN_WORDS` words), the share that already occurred earlier in the text.

An ordinary answer repeats a few phrases ("Use a ...", "- Make sure ..."); a looping one
repeats most of itself: "Your answer is a little piece of yourself." eighteen times scores
about 0.9 on both. Short texts are never degenerate: a haiku may repeat a line.

``sample`` and ``update`` drop degenerate outputs and count them (``degenerate`` in the
iteration's extraction counts) unless ``TPOConfig.drop_loops`` is off.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LOOP_THRESHOLD = 0.5
MIN_LINES = 4
MIN_WORDS = 16
NGRAM = 4

_WORD = re.compile(r"\w+(?:['’-]\w+)*")


@dataclass(frozen=True)
class Repetition:
    """How much of a text repeats itself: shares of repeated lines and of repeated 4-grams."""

    repeated_lines: float
    repeated_ngrams: float

    @property
    def degenerate(self) -> bool:
        return max(self.repeated_lines, self.repeated_ngrams) >= LOOP_THRESHOLD


def repetition(text: str) -> Repetition:
    """The two repetition shares of ``text`` (0.0 for a text too short to judge)."""
    return Repetition(_repeated_share(_lines(text), MIN_LINES), _repeated_ngram_share(text))


def is_degenerate(text: str) -> bool:
    """True when ``text`` is mostly repetition (see the module docstring for the rule)."""
    return repetition(text).degenerate


def _lines(text: str) -> list[str]:
    lines = (" ".join(line.split()).strip(" .,;:!?-*#").lower() for line in text.splitlines())
    return [line for line in lines if line]


def _repeated_ngram_share(text: str) -> float:
    words = [w.lower() for w in _WORD.findall(text)]
    if len(words) < MIN_WORDS:
        return 0.0
    grams = [tuple(words[i : i + NGRAM]) for i in range(len(words) - NGRAM + 1)]
    return _repeated_share(grams, 1)


def _repeated_share(items: list, minimum: int) -> float:
    """The share of ``items`` equal to an earlier item (0.0 when fewer than ``minimum``)."""
    if len(items) < max(minimum, 1):
        return 0.0
    return (len(items) - len(set(items))) / len(items)
