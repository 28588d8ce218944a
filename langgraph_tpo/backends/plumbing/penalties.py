"""Repetition controls for ``generate``: OpenAI's frequency and presence penalties, and
transformers' own multiplicative ``repetition_penalty``.

They run before temperature and top-p
(:class:`~langgraph_tpo.backends.inprocess.nucleus.TemperatureTopP`) and also when
decoding greedily, as vLLM applies them.
"""

from __future__ import annotations

from typing import Any


class FrequencyPresencePenalty:
    """A ``LogitsProcessor`` with OpenAI's formula: a token's logit minus
    ``frequency_penalty * count + presence_penalty * (count > 0)``, where ``count`` is how
    often the token appears in the row's generated tokens so far (the prompt, the first
    ``prompt_len`` ids, is not counted, as in OpenAI's API and vLLM)."""

    def __init__(self, frequency_penalty: float, presence_penalty: float, prompt_len: int) -> None:
        self.frequency_penalty = frequency_penalty
        self.presence_penalty = presence_penalty
        self.prompt_len = prompt_len

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        generated = input_ids[:, self.prompt_len :]
        if generated.shape[1] == 0:
            return scores
        counts = scores.new_zeros(scores.shape).scatter_add_(
            -1, generated, scores.new_ones(generated.shape)
        )
        present = (counts > 0).to(scores.dtype)
        return scores - self.frequency_penalty * counts - self.presence_penalty * present


def penalty_processors(
    frequency_penalty: float | None,
    presence_penalty: float | None,
    repetition_penalty: float | None,
    prompt_len: int,
) -> list[Any]:
    """The logits processors for the penalties that are set (an empty list when none is).

    ``repetition_penalty`` is transformers' ``RepetitionPenaltyLogitsProcessor``: it counts
    the prompt too, as vLLM's ``repetition_penalty`` does.
    """
    processors: list[Any] = []
    if repetition_penalty is not None:
        from transformers import RepetitionPenaltyLogitsProcessor

        processors.append(RepetitionPenaltyLogitsProcessor(repetition_penalty))
    if frequency_penalty is not None or presence_penalty is not None:
        processors.append(
            FrequencyPresencePenalty(frequency_penalty or 0.0, presence_penalty or 0.0, prompt_len)
        )
    return processors
