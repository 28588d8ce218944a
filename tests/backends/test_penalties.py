"""The repetition controls of the transformers backend: the logits processors on tiny
tensors (exact numbers), their place in ``generate``'s arguments, and their effect on the
real embedded SmolLM2 (greedy, a few tokens)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch
from langchain_core.messages import HumanMessage
from transformers import RepetitionPenaltyLogitsProcessor

from langgraph_tpo.backends.inprocess.causal_lm import LoadedModel
from langgraph_tpo.backends.inprocess.nucleus import TemperatureTopP
from langgraph_tpo.backends.inprocess.transformers_chat import (
    SamplingParams,
    TransformersChatModel,
    _generate_kwargs,
)
from langgraph_tpo.backends.plumbing.penalties import FrequencyPresencePenalty, penalty_processors
from langgraph_tpo.errors import ConfigError

TOKENIZER = SimpleNamespace(pad_token_id=0)  # all _generate_kwargs reads of a tokenizer


def test_frequency_and_presence_count_only_the_generated_tokens() -> None:
    # prompt: the first 2 ids of each row; row 0 generated 1, 3, 1; row 1 generated 2, 2, 2
    input_ids = torch.tensor([[4, 1, 1, 3, 1], [4, 1, 2, 2, 2]])
    penalty = FrequencyPresencePenalty(frequency_penalty=0.5, presence_penalty=0.25, prompt_len=2)
    out = penalty(input_ids, torch.zeros(2, 5))
    expected = torch.tensor([[0.0, -1.25, 0.0, -0.75, 0.0], [0.0, 0.0, -1.75, 0.0, 0.0]])
    assert torch.equal(out, expected)  # token 4 (and 1 in row 1) is only in the prompt


def test_nothing_generated_yet_leaves_the_scores() -> None:
    scores = torch.tensor([[1.0, -2.0, 3.0]])
    penalty = FrequencyPresencePenalty(2.0, 2.0, prompt_len=2)
    assert torch.equal(penalty(torch.tensor([[1, 2]]), scores), scores)


def test_negative_penalties_favour_repeats() -> None:
    penalty = FrequencyPresencePenalty(-1.0, -0.5, prompt_len=0)
    out = penalty(torch.tensor([[2, 2]]), torch.zeros(1, 3))
    assert torch.equal(out, torch.tensor([[0.0, 0.0, 2.5]]))


def test_repetition_penalty_divides_positive_and_multiplies_negative_logits() -> None:
    (repetition,) = penalty_processors(None, None, 2.0, prompt_len=1)
    scores = torch.tensor([[1.0, 2.0, -1.0, 4.0, 0.5]])
    out = repetition(torch.tensor([[4, 2, 3]]), scores)  # counts the prompt (id 4) too
    assert torch.equal(out, torch.tensor([[1.0, 2.0, -2.0, 2.0, 0.25]]))


def test_no_penalty_set_is_no_processor() -> None:
    assert penalty_processors(None, None, None, prompt_len=3) == []


def params(**values: Any) -> SamplingParams:
    defaults = {"n": 2, "temperature": 0.7, "top_p": 0.9, "max_tokens": 5, "seed": None,
                "logprobs": False, "top_logprobs": 0}  # fmt: skip
    return SamplingParams(**{**defaults, **values}).validate()


def processor_types(kwargs: dict[str, Any]) -> list[type]:
    return [type(p) for p in kwargs.get("logits_processor", [])]


def test_penalties_come_before_temperature_and_top_p() -> None:
    kwargs = _generate_kwargs(
        params(repetition_penalty=1.3, frequency_penalty=0.5), TOKENIZER, 4, []
    )
    assert processor_types(kwargs) == [
        RepetitionPenaltyLogitsProcessor, FrequencyPresencePenalty, TemperatureTopP,
    ]  # fmt: skip


def test_greedy_decoding_gets_the_penalties_too() -> None:
    kwargs = _generate_kwargs(params(temperature=0, presence_penalty=1.0), TOKENIZER, 4, [])
    assert kwargs["do_sample"] is False
    assert processor_types(kwargs) == [FrequencyPresencePenalty]
    unpenalized = _generate_kwargs(params(temperature=0), TOKENIZER, 4, [])
    assert "logits_processor" not in unpenalized  # as before: nothing new by default


@pytest.mark.parametrize(
    "overrides,field",
    [
        ({"repetition_penalty": 0.0}, "repetition_penalty"),
        ({"frequency_penalty": 2.5}, "frequency_penalty"),
        ({"presence_penalty": -3.0}, "presence_penalty"),
    ],
)
def test_out_of_range_call_kwargs_are_a_config_error(overrides: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        TransformersChatModel()._params(overrides)


REPEAT = [HumanMessage("Write the word 'tea' ten times, separated by spaces.")]


def greedy_text(**kwargs: Any) -> str:
    model = TransformersChatModel(temperature=0, max_tokens=24)
    return model.generate([REPEAT], **kwargs).generations[0][0].text


def test_penalties_change_smollm2s_greedy_output(smollm2: LoadedModel) -> None:
    plain = greedy_text()
    assert greedy_text(repetition_penalty=2.0) != plain
    assert greedy_text(frequency_penalty=2.0, presence_penalty=2.0) != plain
    assert greedy_text() == plain  # greedy: the difference is the penalty's
