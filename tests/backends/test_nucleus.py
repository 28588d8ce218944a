"""TemperatureTopP keeps exactly the tokens transformers' temperature + top-p warpers keep."""

from __future__ import annotations

import pytest
import torch
from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper

from langgraph_tpo.backends.inprocess.nucleus import TemperatureTopP

VOCAB = 49_152


def reference(scores: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    ids = torch.zeros((scores.shape[0], 1), dtype=torch.long)
    scores = TemperatureLogitsWarper(temperature)(ids, scores)
    return TopPLogitsWarper(top_p)(ids, scores)


def kept(scores: torch.Tensor) -> torch.Tensor:
    return torch.isfinite(scores)


@pytest.mark.parametrize("top_p", [0.1, 0.5, 0.9, 0.95])
@pytest.mark.parametrize("temperature", [0.3, 0.7, 1.0])
def test_same_tokens_and_values_as_transformers(temperature: float, top_p: float) -> None:
    torch.manual_seed(0)
    scores = torch.randn(5, VOCAB) * 4  # peaked: the nucleus fits in the top candidates

    ours = TemperatureTopP(temperature, top_p)(None, scores.clone())
    theirs = reference(scores.clone(), temperature, top_p)

    assert torch.equal(kept(ours), kept(theirs))
    assert torch.allclose(ours[kept(ours)], theirs[kept(theirs)])
    assert kept(ours).sum(dim=-1).min() >= 1


def test_wide_nucleus_falls_back_to_a_full_sort() -> None:
    torch.manual_seed(1)
    scores = torch.randn(3, VOCAB) * 0.01  # nearly flat: ~95% of 49k tokens are needed
    processor = TemperatureTopP(0.7, 0.95, candidates=256)

    ours = processor(None, scores.clone())

    theirs = reference(scores.clone(), 0.7, 0.95)
    assert kept(ours).sum(dim=-1).min() > 256
    # over ~46k tokens the two cumulative sums (ascending there, descending here) round
    # differently in float32, which can move the boundary by a token
    assert (kept(ours) != kept(theirs)).sum(dim=-1).max() <= 2


def test_top_p_one_only_applies_the_temperature() -> None:
    scores = torch.randn(2, 100)
    assert torch.allclose(TemperatureTopP(0.5, 1.0)(None, scores), scores / 0.5)


def test_one_token_is_always_kept() -> None:
    scores = torch.tensor([[10.0, 0.0, 0.0]])
    assert kept(TemperatureTopP(1.0, 0.01)(None, scores)).tolist() == [[True, False, False]]


@pytest.mark.parametrize(
    ("temperature", "top_p"), [(0.0, 0.9), (-1.0, 0.9), (0.7, 0.0), (0.7, 1.5)]
)
def test_bad_settings_are_named(temperature: float, top_p: float) -> None:
    with pytest.raises(ValueError, match="temperature|top_p"):
        TemperatureTopP(temperature, top_p)
