"""TransformersReward against a tiny random LlamaForSequenceClassification."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from langgraph_tpo.backends.factory import build_reward
from langgraph_tpo.backends.inprocess.chat_template import render_for_reward
from langgraph_tpo.backends.rewards.transformers_reward import TransformersReward
from langgraph_tpo.cli.options import CommandSettings
from langgraph_tpo.errors import BackendUnavailableError, ConfigError
from langgraph_tpo.reward import BatchReward, RewardPair
from langgraph_tpo.studio import BACKEND_FIELDS, StudioContext

from .conftest import build_tiny_reward_model

CAPITAL = [{"role": "user", "content": "What is the capital of France?"}]
PAIRS: list[RewardPair] = [
    (CAPITAL, "Paris."),
    (CAPITAL, "The capital of France is Paris, which is also its largest city by far."),
    ([{"role": "user", "content": "Write a haiku."}], "Waves fold into foam."),
    (
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Name a colour."},
        ],
        "Blue",
    ),
    (CAPITAL, "I like turtles."),
]


def direct_scores(model_dir: Path, pairs: list[RewardPair]) -> list[float]:
    """One unpadded forward pass per pair, straight through transformers."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=torch.float32)
    scores = []
    for conversation, response in pairs:
        text = render_for_reward(tokenizer, conversation, response)
        ids = tokenizer(text, add_special_tokens=True, return_tensors="pt")["input_ids"]
        with torch.inference_mode():
            scores.append(model(input_ids=ids).logits[0, 0].item())
    return scores


def test_implements_the_protocol(tiny_rm_dir: Path) -> None:
    assert isinstance(TransformersReward(str(tiny_rm_dir)), BatchReward)


def test_padded_batches_match_one_at_a_time(tiny_rm_dir: Path) -> None:
    batched = TransformersReward(str(tiny_rm_dir), batch_size=8).score_batch(PAIRS)
    single = TransformersReward(str(tiny_rm_dir), batch_size=1).score_batch(PAIRS)
    odd = TransformersReward(str(tiny_rm_dir), batch_size=2).score_batch(PAIRS)
    assert batched == pytest.approx(single, abs=1e-4)
    assert odd == pytest.approx(single, abs=1e-4)
    assert len(set(single)) == len(single)  # the scores actually differ per pair


def test_scores_equal_a_direct_model_call(tiny_rm_dir: Path) -> None:
    scores = TransformersReward(str(tiny_rm_dir)).score_batch(PAIRS)
    assert scores == pytest.approx(direct_scores(tiny_rm_dir, PAIRS), abs=1e-4)


async def test_async_scores_match_sync(tiny_rm_dir: Path) -> None:
    reward = TransformersReward(str(tiny_rm_dir), batch_size=3)
    assert await reward.ascore_batch(PAIRS) == pytest.approx(reward.score_batch(PAIRS), abs=1e-6)
    assert await reward.ascore_batch([]) == []


def test_tokenizer_without_pad_token(
    smollm2_tokenizer_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    model_dir = build_tiny_reward_model(
        tmp_path_factory.mktemp("rm-nopad"), smollm2_tokenizer_dir, pad_token=None
    )
    reward = TransformersReward(str(model_dir), batch_size=8)
    batched = reward.score_batch(PAIRS)
    assert reward._tokenizer.pad_token_id == reward._model.config.pad_token_id is not None
    single = TransformersReward(str(model_dir), batch_size=1).score_batch(PAIRS)
    assert batched == pytest.approx(single, abs=1e-4)


def test_template_ending_with_eos_is_read_at_the_eos(eos_ending_rm_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(eos_ending_rm_dir)
    assert tokenizer.pad_token is None
    rendered = [render_for_reward(tokenizer, *pair) for pair in PAIRS]
    assert all(text.endswith(tokenizer.eos_token) for text in rendered)
    lengths = {len(tokenizer(text)["input_ids"]) for text in rendered}
    assert len(lengths) > 2  # batches of these are padded

    expected = direct_scores(eos_ending_rm_dir, PAIRS)  # unpadded: read at the final EOS
    for batch_size in (8, 2, 1):
        reward = TransformersReward(str(eos_ending_rm_dir), batch_size=batch_size)
        assert reward.score_batch(PAIRS) == pytest.approx(expected, abs=1e-4), batch_size
    assert len(set(expected)) == len(expected)


def test_device_and_dtype_defaults_and_choices(tiny_rm_dir: Path) -> None:
    reward = TransformersReward(str(tiny_rm_dir))
    expected_device = "cuda" if torch.cuda.is_available() else "cpu"
    assert reward.device == expected_device
    assert reward.dtype == ("float32" if expected_device == "cpu" else "bfloat16")
    assert TransformersReward(str(tiny_rm_dir), device="cuda:1").dtype == "bfloat16"

    half = TransformersReward(str(tiny_rm_dir), device="cpu", dtype="bfloat16")
    scores = half.score_batch(PAIRS)
    assert half._model.dtype == torch.bfloat16
    full = TransformersReward(str(tiny_rm_dir), device="cpu").score_batch(PAIRS)
    # bfloat16 keeps ~3 significant digits; the random tiny model amplifies the rounding
    assert scores == pytest.approx(full, abs=0.3)
    assert scores != full
    with pytest.raises(ConfigError, match="reward dtype.*'float8'"):
        TransformersReward(str(tiny_rm_dir), dtype="float8")
    with pytest.raises(ConfigError, match="reward device.*'gpu'"):
        TransformersReward(str(tiny_rm_dir), device="gpu")


def test_device_and_dtype_reach_the_reward_from_flags_env_and_studio(
    tiny_rm_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TPO_REWARD_DTYPE", "bfloat16")
    flags = {"reward_path": str(tiny_rm_dir), "reward_device": "cpu"}
    _, settings = CommandSettings(flags).resolve()
    reward = build_reward(settings, policy=None)  # type: ignore[arg-type]
    assert isinstance(reward, TransformersReward)
    assert (reward.device, reward.dtype) == ("cpu", "bfloat16")
    assert {"reward_device", "reward_dtype"} <= set(BACKEND_FIELDS) & set(
        StudioContext.model_fields
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_unavailable_device_is_config_error(tiny_rm_dir: Path) -> None:
    with pytest.raises(ConfigError, match="'cuda' is not available"):
        TransformersReward(str(tiny_rm_dir), device="cuda").score_batch(PAIRS[:1])


def test_max_length_keeps_the_end(tiny_rm_dir: Path) -> None:
    pair = PAIRS[1]
    tokenizer = AutoTokenizer.from_pretrained(tiny_rm_dir)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_rm_dir, dtype=torch.float32)
    ids = tokenizer(render_for_reward(tokenizer, *pair), add_special_tokens=True)["input_ids"]
    with torch.inference_mode():
        expected = model(input_ids=torch.tensor([ids[-12:]])).logits[0, 0].item()
    reward = TransformersReward(str(tiny_rm_dir), max_length=12)
    assert reward.score_batch([pair, PAIRS[0]])[0] == pytest.approx(expected, abs=1e-4)


def test_multi_label_model_is_rejected(
    smollm2_tokenizer_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    model_dir = build_tiny_reward_model(
        tmp_path_factory.mktemp("rm-2labels"), smollm2_tokenizer_dir, num_labels=2
    )
    with pytest.raises(ConfigError, match="num_labels=2"):
        TransformersReward(str(model_dir)).score_batch(PAIRS[:1])


def test_missing_model_is_backend_unavailable(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailableError, match="path does not exist"):
        TransformersReward(str(tmp_path / "missing"))
    with pytest.raises(ConfigError):
        TransformersReward(str(tmp_path), batch_size=0)
