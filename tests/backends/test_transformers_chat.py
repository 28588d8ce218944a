"""TransformersChatModel against the real embedded SmolLM2 (a few tokens per call)."""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from langgraph_tpo.backends.inprocess.causal_lm import LoadedModel, stored_context_window
from langgraph_tpo.backends.inprocess.nucleus import TemperatureTopP
from langgraph_tpo.backends.inprocess.transformers_chat import (
    TransformersChatModel,
    _generate_kwargs,
)
from langgraph_tpo.errors import ConfigError

STORY = [HumanMessage("Tell me a short story about a dragon.")]
FACT = [SystemMessage("You are concise."), HumanMessage("What is the capital of France?")]


class GenerateSpy:
    """Counts ``generate`` calls and the most that ran at the same time."""

    def __init__(self, generate: Callable[..., Any]) -> None:
        self.generate = generate
        self.calls: list[dict[str, Any]] = []
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self.calls.append(kwargs)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            return self.generate(*args, **kwargs)
        finally:
            with self._lock:
                self.active -= 1


@pytest.fixture
def spy(smollm2: LoadedModel, monkeypatch: pytest.MonkeyPatch) -> Iterator[GenerateSpy]:
    spy = GenerateSpy(smollm2.model.generate)
    monkeypatch.setattr(smollm2.model, "generate", spy)
    yield spy


def texts(model: TransformersChatModel, messages: list[Any], **kwargs: Any) -> list[str]:
    result = model.generate([messages], **kwargs)
    return [g.text for g in result.generations[0]]


def test_n_is_a_pydantic_field() -> None:
    assert "n" in type(TransformersChatModel()).model_fields
    assert TransformersChatModel()._llm_type == "transformers"


def test_n_samples_come_from_one_generate_call(spy: GenerateSpy) -> None:
    model = TransformersChatModel(n=3, max_tokens=6, seed=0)
    result = model.generate([STORY])
    assert len(result.generations[0]) == 3
    assert len(spy.calls) == 1
    call = spy.calls[0]
    assert call["input_ids"].shape[0] == 3 and call["do_sample"] is True
    # the prompt was prefilled once: its KV cache (all but the last token) has 3 rows
    prompt_len = call["input_ids"].shape[1]
    assert call["past_key_values"].get_seq_length() >= prompt_len - 1


def test_shared_prefill_samples_what_num_return_sequences_samples(smollm2: LoadedModel) -> None:
    model = TransformersChatModel(n=3, max_tokens=8, seed=11)
    ours = texts(model, STORY)

    prompt_ids = TransformersChatModel._encode(smollm2.tokenizer, STORY)
    params = model._params({})
    kwargs = _generate_kwargs(params, smollm2.tokenizer, prompt_ids.shape[1], [])
    with torch.random.fork_rng(devices=[]), torch.inference_mode():
        torch.manual_seed(11)
        plain = smollm2.model.generate(
            input_ids=prompt_ids,
            attention_mask=torch.ones_like(prompt_ids),
            num_return_sequences=3,
            **kwargs,
        )
    decoded = smollm2.tokenizer.batch_decode(
        plain.sequences[:, prompt_ids.shape[1] :], skip_special_tokens=True
    )
    assert ours == decoded


def test_temperature_and_top_p_go_through_one_processor(spy: GenerateSpy) -> None:
    TransformersChatModel(n=2, max_tokens=3, seed=0, temperature=0.5, top_p=0.8).generate([STORY])

    call = spy.calls[0]
    (nucleus,) = call["logits_processor"]
    assert isinstance(nucleus, TemperatureTopP)
    assert (nucleus.temperature, nucleus.top_p) == (0.5, 0.8)
    # generate's own warpers are off, or temperature and top-p would be applied twice
    assert (call["temperature"], call["top_p"], call["top_k"]) == (1.0, 1.0, 0)


def test_same_seed_same_samples(spy: GenerateSpy) -> None:
    model = TransformersChatModel(n=3, max_tokens=6, temperature=1.0)
    rng_state = torch.random.get_rng_state()
    first = texts(model, STORY, seed=7)
    assert torch.equal(torch.random.get_rng_state(), rng_state)  # seeding leaves it alone
    assert texts(model, STORY, seed=7) == first
    assert texts(model, STORY, seed=8) != first
    assert texts(model, STORY) != texts(model, STORY)  # unseeded calls keep varying


def test_greedy_n_copies_one_sequence(spy: GenerateSpy) -> None:
    model = TransformersChatModel(n=2, max_tokens=6, temperature=0)
    result = model.generate([FACT])
    assert len(spy.calls) == 1 and spy.calls[0]["do_sample"] is False
    first, second = (g.text for g in result.generations[0])
    assert first == second and first


def test_stop_strings_truncate_and_stop(spy: GenerateSpy) -> None:
    model = TransformersChatModel(max_tokens=12, temperature=0)
    full = model.invoke(FACT)
    words = full.content.split()
    assert len(words) >= 3, full.content
    stop = " " + words[2]
    cut = model.invoke(FACT, stop=[stop, "never-appears"])
    assert cut.content == full.content[: full.content.index(stop)]
    assert cut.response_metadata["finish_reason"] == "stop"
    assert cut.usage_metadata["output_tokens"] < full.usage_metadata["output_tokens"]


def test_usage_and_finish_reason(smollm2: LoadedModel) -> None:
    model = TransformersChatModel(n=2, max_tokens=4, seed=1)
    result = model.generate([STORY])
    prompt = smollm2.tokenizer.apply_chat_template(
        [{"role": "user", "content": STORY[0].content}],
        add_generation_prompt=True,
        tokenize=True,
        return_dict=True,
    )
    prompt_len = len(prompt["input_ids"])
    for generation in result.generations[0]:
        message = generation.message
        assert isinstance(message, AIMessage)
        assert message.response_metadata["finish_reason"] == "length"
        assert generation.generation_info["finish_reason"] == "length"
        assert message.usage_metadata == {
            "input_tokens": prompt_len,
            "output_tokens": 4,
            "total_tokens": prompt_len + 4,
        }
    assert result.llm_output["token_usage"] == {
        "prompt_tokens": prompt_len,
        "completion_tokens": 8,
        "total_tokens": prompt_len + 8,
    }


def test_logprobs_in_openai_format() -> None:
    model = TransformersChatModel(max_tokens=5, temperature=0)
    reply = model.invoke(FACT, logprobs=True, top_logprobs=3)
    content = reply.response_metadata["logprobs"]["content"]
    assert 1 <= len(content) <= 5
    for entry in content:
        assert set(entry) == {"token", "logprob", "bytes", "top_logprobs"}
        assert isinstance(entry["token"], str) and entry["logprob"] <= 0
        assert len(entry["top_logprobs"]) == 3
        top = entry["top_logprobs"]
        assert top[0]["token"] == entry["token"]  # greedy picks the most likely token
        assert math.isclose(top[0]["logprob"], entry["logprob"], abs_tol=1e-6)
        assert [t["logprob"] for t in top] == sorted((t["logprob"] for t in top), reverse=True)
        assert sum(math.exp(t["logprob"]) for t in top) <= 1 + 1e-6
    text = "".join(e["token"] for e in content)
    assert text.startswith(reply.content)  # plus the end-of-turn token when generated
    assert "logprobs" not in model.invoke(FACT, max_tokens=2).response_metadata


def test_message_roles_and_unsupported_messages() -> None:
    model = TransformersChatModel(max_tokens=2, temperature=0)
    history = [*FACT, AIMessage("Paris."), HumanMessage("And of Italy?")]
    assert isinstance(model.invoke(history).content, str)
    with pytest.raises(ConfigError, match="tool"):
        model.invoke([ToolMessage("x", tool_call_id="1")])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"n": 0}, "n must be"), ({"top_p": 0}, "top_p"), ({"tools": []}, "does not support tools")],
)
def test_bad_settings_raise_config_error(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        TransformersChatModel(max_tokens=2).invoke(FACT, **kwargs)


async def test_concurrent_async_calls_never_overlap(spy: GenerateSpy) -> None:
    model = TransformersChatModel(max_tokens=3, temperature=0)
    other = TransformersChatModel(max_tokens=3, n=2, seed=3)
    replies = await asyncio.gather(model.ainvoke(FACT), other.ainvoke(STORY), model.ainvoke(STORY))
    assert all(isinstance(r.content, str) for r in replies)
    assert len(spy.calls) == 3 and spy.max_active == 1


EMOJI = "🐉🔥🌋🐲"


def test_decode_of_a_cut_completion_never_ends_in_a_broken_character(
    smollm2: LoadedModel,
) -> None:
    """SmolLM2's byte-level tokenizer spreads each emoji over several tokens: every prefix
    of the token ids decodes to a prefix of the text, without U+FFFD."""
    from langgraph_tpo.backends.inprocess.transformers_chat import decode_completion

    tokenizer = smollm2.tokenizer
    ids = tokenizer.encode("Fire: " + EMOJI, add_special_tokens=False)
    raw = [tokenizer.decode(ids[:k]) for k in range(1, len(ids) + 1)]
    assert any(text.endswith("\ufffd") for text in raw)  # the cut does split characters
    for k in range(1, len(ids) + 1):
        text = decode_completion(tokenizer, ids[:k], cut_short=True)
        assert "\ufffd" not in text and ("Fire: " + EMOJI).startswith(text), (k, text)


def test_generation_cut_at_max_tokens_never_ends_in_a_broken_character(
    smollm2: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw: list[str] = []
    generate = smollm2.model.generate

    def recording(*args: Any, **kwargs: Any) -> Any:
        out = generate(*args, **kwargs)
        prompt_len = kwargs["input_ids"].shape[1]
        raw.append(smollm2.tokenizer.decode(out.sequences[0, prompt_len:]))
        return out

    monkeypatch.setattr(smollm2.model, "generate", recording)
    model = TransformersChatModel(temperature=0.0)
    prompt = [HumanMessage(f"Repeat exactly, nothing else: {EMOJI}{EMOJI}")]
    cut = [texts(model, prompt, max_tokens=k)[0] for k in range(1, 9)]
    assert any(text.endswith("\ufffd") for text in raw)  # some cuts split an emoji
    assert all("\ufffd" not in text for text in cut), cut


async def test_the_embedded_model_knows_its_window_and_counts_a_prompt(smollm2) -> None:
    policy = TransformersChatModel()
    assert await policy.acontext_window() == 8192 == smollm2.model.config.max_position_embeddings
    assert stored_context_window() == 8192  # read from disk, no weights needed
    tokens = await policy.acount_prompt_tokens([HumanMessage("Hello there")])
    assert 2 < tokens < 40
