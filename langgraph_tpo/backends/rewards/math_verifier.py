"""A verifier reward for math: 1.0 when a response's final answer equals the reference.

Built on Hugging Face's ``math-verify`` (the optional ``math`` extra:
``pip install 'langgraph-tpo[math]'``): it extracts the final answer (``\\boxed{...}``, else
the last LaTeX or plain expression), parses it with SymPy and compares it with the
reference for mathematical equivalence, so ``\\frac{1}{2}``, ``\\dfrac{1}{2}``, ``0.5`` and
``1/2`` agree, ``5 \\text{ cm}`` equals ``5`` and ``\\left( 3, \\frac{\\pi}{2} \\right)``
equals ``(3, \\pi/2)``.

The reference comes from the data row's ``reference`` field (MATH-500's ``answer``, which
``tpo eval`` keeps as ``reference``): ``{"query": ..., "row": {"reference": "\\frac{1}{2}"}}``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from langgraph_tpo.errors import ConfigError
from langgraph_tpo.reward import RewardPair, Row

MATH_EXTRA = "pip install 'langgraph-tpo[math]'"
REFERENCE_FIELD = "reference"
# Seconds one response may take to parse and compare before it counts as wrong.
CHECK_TIMEOUT_S = 10.0


def import_math_verify() -> Any:
    """The ``math_verify`` module, or a ConfigError saying how to install it."""
    try:
        import math_verify
    except ImportError:
        raise ConfigError(
            f"the math verifier reward needs the optional 'math' extra: {MATH_EXTRA}"
        ) from None
    # Its signal-based timeouts work only in the main thread; answers are checked in a
    # worker thread under asyncio's timeout instead, so its note about that is not news.
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    return math_verify


@lru_cache(maxsize=1024)
def _parsed_reference(reference: str) -> Any:
    """The reference parsed once per distinct answer (a prompt's candidates share it)."""
    math_verify = import_math_verify()
    text = reference if "$" in reference or "\\boxed" in reference else f"${reference}$"
    return math_verify.parse(text, parsing_timeout=None)


def answers_match(response: str, reference: str) -> bool:
    """Whether the final answer of ``response`` is equivalent to ``reference``."""
    math_verify = import_math_verify()
    gold = _parsed_reference(reference)
    answer = math_verify.parse(response, parsing_timeout=None)
    if not gold or not answer:
        return False
    return bool(math_verify.verify(gold, answer, timeout_seconds=None))


class MathVerifierReward:
    """Scores 1.0 when a response's final answer is equivalent to the row's ``reference``,
    else 0.0 (no answer found, another answer, or a check over ``timeout_s`` seconds).

    Each response is checked in a worker thread, so a long SymPy comparison does not stall
    the other prompts; combine it with a reward model through
    :class:`~langgraph_tpo.reward.WeightedReward` to rank responses with the same verdict.
    """

    row_fields = (REFERENCE_FIELD,)

    def __init__(self, timeout_s: float = CHECK_TIMEOUT_S) -> None:
        import_math_verify()  # a missing extra fails when the reward is built
        self.timeout_s = timeout_s

    async def ascore_batch(self, pairs: Sequence[RewardPair], *, row: Row) -> list[float]:
        reference = str(row[REFERENCE_FIELD])
        checks = (self._check(response, reference) for _, response in pairs)
        return list(await asyncio.gather(*checks))

    async def _check(self, response: str, reference: str) -> float:
        try:
            check = asyncio.to_thread(answers_match, response, reference)
            matched = await asyncio.wait_for(check, self.timeout_s)
        except TimeoutError:
            return 0.0
        return 1.0 if matched else 0.0


def math_verifier() -> MathVerifierReward:
    """The verifier as a reward factory: ``--reward-factory
    langgraph_tpo.backends.rewards.math_verifier:math_verifier``."""
    return MathVerifierReward()
