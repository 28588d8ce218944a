"""A LangChain chat model that runs a Hugging Face causal LM in-process.

:class:`TransformersChatModel` reads LangChain messages, renders them with the
tokenizer's chat template, and samples ``n`` completions in one batched ``generate``
call. Its output mirrors what ``ChatOpenAI`` returns from an OpenAI-compatible server
(``finish_reason``, token usage, and OpenAI-format ``logprobs``), so the graph and the
judge read both the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from pydantic import model_validator

from langgraph_tpo.backends.inprocess.causal_lm import (
    DEFAULT_HUB_ID,
    LoadedModel,
    check_model_path,
    load_model,
    stored_context_window,
)
from langgraph_tpo.backends.inprocess.nucleus import TemperatureTopP
from langgraph_tpo.backends.plumbing.chat_base import (
    Sample,
    SamplingChatModel,
    chat_result,
    check_one_sample,
    first_stop,
    held_back,
    last_chunk,
    text_chunk,
)
from langgraph_tpo.backends.plumbing.extras import require
from langgraph_tpo.backends.plumbing.penalties import penalty_processors
from langgraph_tpo.errors import ConfigError, PolicyError
from langgraph_tpo.reward import chat_role

# Sampling draws from torch's global RNG: one sampling call at a time across all models,
# so a seeded call is reproducible even while another model samples in another thread.
_RNG_LOCK = threading.Lock()


@dataclass(frozen=True)
class SamplingParams:
    """One request's sampling settings, after per-call overrides."""

    n: int
    temperature: float
    top_p: float
    max_tokens: int
    seed: int | None
    logprobs: bool
    top_logprobs: int
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    repetition_penalty: float | None = None

    def validate(self) -> SamplingParams:
        if self.n < 1:
            raise ConfigError(f"n must be >= 1, got {self.n}")
        if self.temperature < 0:
            raise ConfigError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 1:
            raise ConfigError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if self.top_logprobs < 0:
            raise ConfigError(f"top_logprobs must be >= 0, got {self.top_logprobs}")
        for name in ("frequency_penalty", "presence_penalty"):
            value = getattr(self, name)
            if value is not None and not -2.0 <= value <= 2.0:
                raise ConfigError(f"{name} must be in [-2.0, 2.0], got {value}")
        if self.repetition_penalty is not None and not 0 < self.repetition_penalty < math.inf:
            raise ConfigError(f"repetition_penalty must be > 0, got {self.repetition_penalty}")
        return self

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


def to_chat_dicts(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    """LangChain messages as ``{"role", "content"}`` dicts for a chat template."""
    converted = []
    for message in messages:
        role = chat_role(message)
        if role is None:
            raise ConfigError(
                f"TransformersChatModel cannot render a {message.type!r} message "
                "(only system, user and assistant messages)"
            )
        converted.append({"role": role, "content": _text_of(message)})
    return converted


def _text_of(message: BaseMessage) -> str:
    """The message's text (``BaseMessage.text``); a block that is not text (an image, a
    file) is a :class:`ConfigError` rather than dropped without a word."""
    if isinstance(message.content, list):
        for block in message.content:
            if not isinstance(block, str) and not (
                isinstance(block, dict) and block.get("type") == "text"
            ):
                raise ConfigError(f"TransformersChatModel only reads text content, got {block!r}")
    return message.text


class TransformersChatModel(SamplingChatModel):
    """Chat model over ``AutoModelForCausalLM`` (default: SmolLM2-135M-Instruct on CPU).

    Reads: system/user/assistant messages; per-call kwargs ``n``, ``temperature``,
    ``top_p``, ``max_tokens``, ``seed``, ``logprobs``, ``top_logprobs`` and the penalties
    (``frequency_penalty``, ``presence_penalty``: OpenAI's, over the generated tokens;
    ``repetition_penalty``: transformers') override the fields.
    Returns: a ``ChatResult`` with ``n`` generations. Each ``AIMessage`` carries
    ``usage_metadata`` (its prompt tokens and its own completion tokens) and
    ``response_metadata`` with ``finish_reason`` ("stop" or "length") and, when asked,
    ``logprobs`` as ``{"content": [{"token", "logprob", "bytes", "top_logprobs"}, ...]}``.
    Logprobs are the model's raw distribution (before temperature / top-p), as vLLM reports.
    ``stop`` strings (the call's, else the field) end a completion before the first of them.

    Streaming (``stream``/``astream``, and any call LangChain streams, as LangGraph's
    ``stream_mode="messages"`` does) yields the text of a one-sample call as ``generate``
    produces it, held back only where it could be the start of a stop string; the last
    chunk carries the usage and ``response_metadata``, and the chunks add up to the text
    ``invoke`` returns with the same seed. A call for ``n > 1`` samples runs as one batch
    and cannot be streamed (a ConfigError: call it with ``stream=False``, as TPO does).
    The model is loaded on first use through :func:`causal_lm.load_model`, so every instance
    with the same ``model_path`` shares one model and one generate lock; a local
    ``model_path`` that does not exist or holds no model files is a
    :class:`BackendUnavailableError` at construction.
    """

    model_path: str | None = None

    @model_validator(mode="after")
    def _model_path_exists(self) -> TransformersChatModel:
        """A local ``model_path`` that holds no model fails here, not at the first call."""
        require("local", "torch", "transformers", what="TransformersChatModel")
        check_model_path(self.model_path)
        return self

    @property
    def _llm_type(self) -> str:
        return "transformers"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_path": self.model_path, **self._params({}).__dict__}

    def ls_model_name(self, kwargs: dict[str, Any]) -> str:
        return str(kwargs.get("model") or self.model_path or DEFAULT_HUB_ID)

    def _params(self, overrides: dict[str, Any]) -> SamplingParams:
        values = self.sampling_values(overrides)
        if values["top_logprobs"] and not values["logprobs"]:
            values["logprobs"] = True
        return SamplingParams(**values).validate()

    def loaded(self) -> LoadedModel:
        """The shared model, tokenizer and lock (loads them on first use)."""
        return load_model(self.model_path)

    async def acontext_window(self) -> int | None:
        """The model config's ``max_position_embeddings``, read from disk when it can be
        (a refusal then needs no weights loaded), else from the loaded model."""
        window = await asyncio.to_thread(stored_context_window, self.model_path)
        if window is not None:
            return window
        loaded = await asyncio.to_thread(self.loaded)
        window = getattr(loaded.model.config, "max_position_embeddings", None)
        return int(window) if window else None

    async def acount_prompt_tokens(self, messages: list[BaseMessage]) -> int:
        """The tokens of ``messages`` under the chat template, as ``_chat`` encodes them."""
        loaded = await asyncio.to_thread(self.loaded)
        ids = await asyncio.to_thread(self._encode, loaded.tokenizer, messages)
        return int(ids.shape[1])

    def _chat(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> ChatResult:
        params = self._params(kwargs)
        loaded = self.loaded()
        prompt_ids = self._encode(loaded.tokenizer, messages)
        with loaded.lock:
            samples = _sample(loaded, prompt_ids, params, stop or [])
        name = loaded.source.gguf_file or loaded.source.location
        return chat_result(samples, prompt_tokens=prompt_ids.shape[1], model_name=name)

    def _chat_stream(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> Iterator[ChatGenerationChunk]:
        """One sample, streamed: ``generate`` runs in a thread and feeds a
        ``TextIteratorStreamer``; its text is yielded as it comes (see the class doc)."""
        from transformers import TextIteratorStreamer

        params = self._params(kwargs)
        check_one_sample("TransformersChatModel", params.n, " (they are sampled in one batch)")
        stops = stop or []
        loaded = self.loaded()
        prompt_ids = self._encode(loaded.tokenizer, messages)
        tokenizer = loaded.tokenizer
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)

        def work() -> list[Sample]:
            with loaded.lock:
                return _sample(loaded, prompt_ids, params, stops, streamer)

        samples = _in_thread(work, on_error=streamer.end)
        emitted = yield from _streamed_text(streamer, stops)
        (sample,) = samples.result()
        rest = sample.text[len(emitted) :] if sample.text.startswith(emitted) else ""
        name = loaded.source.gguf_file or loaded.source.location
        yield last_chunk(rest, sample, prompt_tokens=prompt_ids.shape[1], model_name=name)

    @staticmethod
    def _encode(tokenizer: Any, messages: list[BaseMessage]) -> Any:
        encoded = tokenizer.apply_chat_template(
            to_chat_dicts(messages),
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
        )
        return encoded["input_ids"]


def _in_thread(work: Callable[[], Any], *, on_error: Callable[[], None]) -> Future:
    """``work()`` in a daemon thread; its result (or error) in the returned future.
    ``on_error`` runs first when it fails (it ends the stream the caller is reading)."""
    future: Future = Future()

    def run() -> None:
        try:
            future.set_result(work())
        except BaseException as exc:
            on_error()
            future.set_exception(exc)

    threading.Thread(target=run, name="tpo-transformers-stream", daemon=True).start()
    return future


def _streamed_text(
    pieces: Iterable[str], stop: Sequence[str]
) -> Generator[ChatGenerationChunk, None, str]:
    """Chunks of the text ``pieces`` add up to, cut before the first stop string; a tail
    that could begin a stop string, or is half a character (U+FFFD), waits for the next
    piece. Returns the text yielded."""
    emitted = seen = ""
    for piece in pieces:
        seen += piece
        cut = first_stop(seen, stop)
        safe = seen[:cut] if cut is not None else seen[: len(seen) - held_back(seen, stop)]
        safe = safe.rstrip(_REPLACEMENT)
        if len(safe) > len(emitted):
            yield text_chunk(safe[len(emitted) :])
            emitted = safe
        if cut is not None:
            break
    return emitted


def _generate_kwargs(
    params: SamplingParams, tokenizer: Any, prompt_len: int, stop: list[str]
) -> dict[str, Any]:
    """``generate`` arguments: every setting explicit, so model defaults (top_k=50) don't leak.

    The penalties that are set come first in the logits processors, before temperature and
    top-p, greedy decoding included."""
    from transformers import LogitsProcessorList, StoppingCriteriaList, StopStringCriteria

    processors = penalty_processors(
        params.frequency_penalty, params.presence_penalty, params.repetition_penalty, prompt_len
    )
    kwargs: dict[str, Any] = {
        "max_new_tokens": params.max_tokens,
        "pad_token_id": tokenizer.pad_token_id,
        "return_dict_in_generate": True,
        "output_logits": params.logprobs,
    }
    if params.greedy:
        kwargs["do_sample"] = False
    else:
        # temperature and top-p in one processor that avoids sorting the whole vocabulary
        # at every step (see nucleus.py); generate's own warpers are switched off
        processors.append(TemperatureTopP(params.temperature, params.top_p))
        kwargs.update(do_sample=True, temperature=1.0, top_p=1.0, top_k=0)
    if processors:
        kwargs["logits_processor"] = LogitsProcessorList(processors)
    if stop:
        # transformers' own criterion: it matches the stop strings on the token ids (a
        # string split over tokens included) without decoding the rows at every step
        kwargs["stopping_criteria"] = StoppingCriteriaList(
            [StopStringCriteria(tokenizer=tokenizer, stop_strings=list(stop))]
        )
    return kwargs


@contextlib.contextmanager
def _seeded(seed: int | None) -> Iterator[None]:
    """Seed torch's global RNG for the block and restore its state after (no-op for None).

    Unseeded calls leave the RNG running, so they keep drawing fresh samples.
    """
    import torch

    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _sample(
    loaded: LoadedModel,
    prompt_ids: Any,
    params: SamplingParams,
    stop: list[str],
    streamer: Any = None,
) -> list[Sample]:
    """Run one ``generate`` call for all ``n`` samples and decode them; ``streamer`` (a
    transformers streamer, one sample only) receives the tokens as they are generated."""
    import torch

    prompt_len = prompt_ids.shape[1]
    rows = 1 if params.greedy else params.n
    kwargs = _generate_kwargs(params, loaded.tokenizer, prompt_len, stop)
    if streamer is not None:
        kwargs["streamer"] = streamer
    rng_lock = contextlib.nullcontext() if params.greedy else _RNG_LOCK
    try:
        with rng_lock, _seeded(params.seed), torch.inference_mode():
            inputs = _rows_with_shared_prefill(loaded.model, prompt_ids, rows)
            out = loaded.model.generate(**inputs, **kwargs)
    except Exception as exc:
        raise PolicyError(f"generate failed: {type(exc).__name__}: {exc}") from exc
    samples = [_decode_row(loaded, out, row, prompt_len, params, stop) for row in range(rows)]
    return samples * params.n if params.greedy else samples


def _rows_with_shared_prefill(model: Any, prompt_ids: Any, rows: int) -> dict[str, Any]:
    """``generate`` inputs for ``rows`` samples of one prompt.

    ``num_return_sequences`` would prefill the same prompt once per row; here the prompt
    (all but its last token, which ``generate`` needs to start from) goes through the model
    once, and its KV cache is repeated for every row. Same samples, a fraction of the
    prefill: TPO's update prompts run to hundreds of tokens, sampled N times.
    """
    import torch
    from transformers import DynamicCache

    batch = prompt_ids.repeat(rows, 1)
    inputs = {"input_ids": batch, "attention_mask": torch.ones_like(batch)}
    if rows == 1 or prompt_ids.shape[1] < 2:
        return inputs
    cache = DynamicCache(config=model.config)
    model(input_ids=prompt_ids[:, :-1], past_key_values=cache, use_cache=True)
    cache.batch_repeat_interleave(rows)
    return {**inputs, "past_key_values": cache}


def _terminators(loaded: LoadedModel) -> set[int]:
    ids: set[int] = set()
    for value in (
        loaded.model.generation_config.eos_token_id,
        loaded.tokenizer.eos_token_id,
        loaded.tokenizer.pad_token_id,
    ):
        if isinstance(value, int):
            ids.add(value)
        elif value:
            ids.update(value)
    return ids


def _decode_row(
    loaded: LoadedModel,
    out: Any,
    row: int,
    prompt_len: int,
    params: SamplingParams,
    stop: list[str],
) -> Sample:
    """Text, finish reason, token count and logprobs of one returned sequence.

    A generated end-of-sequence token is counted in ``output_tokens`` and gets a logprob
    entry (as vLLM reports it) but is not part of the text.
    """
    tokenizer = loaded.tokenizer
    generated = out.sequences[row, prompt_len:].tolist()
    terminators = _terminators(loaded)
    end = next((i for i, tok in enumerate(generated) if tok in terminators), None)
    content_ids = generated if end is None else generated[:end]
    text = decode_completion(tokenizer, content_ids, cut_short=end is None)
    cut = first_stop(text, stop)
    ended_by_eos = end is not None and cut is None
    scored_ids = generated[: end + 1] if ended_by_eos else content_ids
    if cut is not None:
        text = text[:cut]
    finish_reason = "length" if end is None and cut is None else "stop"
    logprobs = None
    if params.logprobs:
        entries = _logprob_entries(tokenizer, out.logits, row, scored_ids, params.top_logprobs)
        logprobs = _truncate_entries(entries, cut)
    return Sample(text, finish_reason, len(scored_ids), logprobs)


def decode_completion(tokenizer: Any, ids: list[int], *, cut_short: bool) -> str:
    """The text of ``ids``; when generation was cut short (``max_tokens``), without the
    broken character a multi-byte sequence split across the last tokens decodes to.

    Byte-level tokenizers (GPT-2, Llama 3, SmolLM2) spread an emoji or a CJK character over
    several tokens; cut after the first of them, the decoded text ends in U+FFFD. vLLM
    holds back such incomplete bytes; so does this.
    """
    text = tokenizer.decode(ids, skip_special_tokens=True)
    if not cut_short or not text.endswith(_REPLACEMENT):
        return text
    for keep in range(len(ids) - 1, max(len(ids) - _MAX_CHAR_TOKENS, 0) - 1, -1):
        shorter = tokenizer.decode(ids[:keep], skip_special_tokens=True)
        if not shorter.endswith(_REPLACEMENT):
            return shorter
    return text.rstrip(_REPLACEMENT)


_REPLACEMENT = "\ufffd"
_MAX_CHAR_TOKENS = 4  # a UTF-8 character is at most 4 bytes, so at most 4 byte tokens


def _token_text(tokenizer: Any, token_id: int) -> str:
    return tokenizer.decode([token_id], skip_special_tokens=False)


def _logprob_entries(
    tokenizer: Any, logits: Sequence[Any], row: int, content_ids: list[int], top_k: int
) -> list[dict[str, Any]]:
    """OpenAI-format logprob entries for each content token of one row (raw logits)."""
    import torch

    entries = []
    for position, token_id in enumerate(content_ids):
        logp = torch.log_softmax(logits[position][row].float(), dim=-1)
        token = _token_text(tokenizer, token_id)
        top: list[dict[str, Any]] = []
        if top_k:
            values, indices = torch.topk(logp, k=min(top_k, logp.shape[-1]))
            top = [
                _entry(_token_text(tokenizer, i), v)
                for v, i in zip(values.tolist(), indices.tolist(), strict=True)
            ]
        entries.append({**_entry(token, float(logp[token_id])), "top_logprobs": top})
    return entries


def _entry(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8"))}


def _truncate_entries(entries: list[dict[str, Any]], cut: int | None) -> list[dict[str, Any]]:
    """Keep the entries of tokens that start before the stop-string cut."""
    if cut is None:
        return entries
    kept, offset = [], 0
    for entry in entries:
        if offset >= cut:
            break
        kept.append(entry)
        offset += len(entry["token"])
    return kept
