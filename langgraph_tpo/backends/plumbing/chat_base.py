"""What the chat models of ``backends`` share.

:class:`ChatModelBase` writes LangChain's two entry points (``_generate``, ``_agenerate``)
once: a model implements ``_chat`` and, where its async path differs from running
``_chat`` in a worker thread, ``_achat``; likewise ``_stream``/``_astream`` once, over
``_chat_stream`` and ``_achat_stream`` (:func:`check_one_sample` is their shared
precondition); it also holds the model's default ``stop``
sequences and reports LangSmith's standard parameters (``_get_ls_params``).
:class:`SamplingChatModel` adds the sampling fields the in-process models (transformers,
vLLM) declare and a call's kwargs override, and :func:`chat_result` is the ``ChatResult``
they return, shaped as ``ChatOpenAI``'s; :func:`last_chunk` ends a streamed one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from langgraph_tpo.errors import ConfigError
from langgraph_tpo.policy import PENALTIES, sum_token_usage

# The per-call kwargs a SamplingChatModel accepts: each overrides the field of that name.
SAMPLING_KWARGS = (
    "n", "temperature", "top_p", "max_tokens", "seed", "logprobs", "top_logprobs", *PENALTIES,
)  # fmt: skip


class ChatModelBase(BaseChatModel):
    """A chat model written as ``_chat(messages, stop, kwargs)`` (blocking) and
    ``_achat`` (async; by default ``_chat`` in a worker thread).

    Both entry points declare ``run_manager`` (LangChain passes it only to a method that
    does) and use it for nothing: LangChain traces the call's run around them.

    ``stop`` is the model's default stop sequences; a call's own ``stop`` replaces them.
    A completion ends before the first stop string it produces (the string itself is not
    returned, as with OpenAI's API), with finish reason ``"stop"``.
    """

    stop: list[str] | None = None
    ls_provider: ClassVar[str] = ""  # LangSmith's provider name (``_get_ls_params``)

    def stop_for(self, stop: list[str] | None) -> list[str] | None:
        """The stop sequences of one call: its own ``stop``, else the model's."""
        return stop if stop is not None else self.stop

    def ls_model_name(self, kwargs: dict[str, Any]) -> str:
        """The model name traces show (a per-call ``model`` kwarg first)."""
        raise NotImplementedError

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        """LangSmith's standard parameters: provider, model name, ``chat``, and the
        temperature, max tokens and stop sequences a call with ``kwargs`` would use."""
        params = LangSmithParams(
            ls_provider=self.ls_provider or self._llm_type,
            ls_model_name=self.ls_model_name(kwargs),
            ls_model_type="chat",
        )
        temperature = kwargs.get("temperature", getattr(self, "temperature", None))
        if temperature is not None:
            params["ls_temperature"] = float(temperature)
        max_tokens = kwargs.get("max_tokens", getattr(self, "max_tokens", None))
        if max_tokens is not None:
            params["ls_max_tokens"] = int(max_tokens)
        stops = self.stop_for(stop)
        if stops:
            params["ls_stop"] = list(stops)
        return params

    def _chat(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> ChatResult:
        raise NotImplementedError

    async def _achat(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> ChatResult:
        return await asyncio.to_thread(self._chat, messages, stop, kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._chat(messages, self.stop_for(stop), kwargs)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return await self._achat(messages, self.stop_for(stop), kwargs)

    def _chat_stream(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> Iterator[ChatGenerationChunk]:
        raise NotImplementedError

    def _achat_stream(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> AsyncIterator[ChatGenerationChunk]:
        """By default LangChain's own: ``_stream`` iterated in worker threads."""
        return BaseChatModel._astream(self, messages, stop, None, **kwargs)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        return self._chat_stream(messages, self.stop_for(stop), kwargs)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        async for chunk in self._achat_stream(messages, self.stop_for(stop), kwargs):
            yield chunk


def check_one_sample(model: str, n: int | None, why: str = "") -> None:
    """A streamed call yields one sample: a :class:`ConfigError` naming ``model`` when a
    call asks for ``n`` > 1 (``why`` adds the model's reason)."""
    if (n or 1) > 1:
        raise ConfigError(
            f"{model} streams one sample per call, not n={n}{why}: call it with "
            "stream=False, or invoke/generate"
        )


class SamplingChatModel(ChatModelBase):
    """A chat model that samples itself: the sampling fields, which per-call kwargs of the
    same names override, and token usage summed over the prompts of one call.

    The penalties are None unless set (the model applies none); ``SAMPLING_KWARGS`` is what
    :func:`~langgraph_tpo.policy.check_penalties` reads of the class."""

    SAMPLING_KWARGS: ClassVar[tuple[str, ...]] = SAMPLING_KWARGS

    n: int = 1
    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 256
    seed: int | None = None
    logprobs: bool = False
    top_logprobs: int = 0
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    repetition_penalty: float | None = None

    def sampling_values(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """The sampling fields with ``overrides`` (a call's kwargs) in their place; a kwarg
        that is none of them is a :class:`ConfigError` (LangChain's own ``stream`` switch
        and ``ls_*`` are ignored)."""
        accepted = self.SAMPLING_KWARGS
        unknown = sorted(k for k in overrides if k not in accepted and not _langchain_kwarg(k))
        if unknown:
            raise ConfigError(
                f"{type(self).__name__} does not support {', '.join(unknown)}; "
                f"it accepts {', '.join(accepted)}"
            )
        return {name: overrides.get(name, getattr(self, name)) for name in accepted}

    def _combine_llm_outputs(self, llm_outputs: list[dict | None]) -> dict:
        return sum_token_usage(llm_outputs)


def _langchain_kwarg(name: str) -> bool:
    """Kwargs LangChain itself passes to a model's entry points (not sampling settings)."""
    return name == "stream" or name.startswith("ls_")


def first_stop(text: str, stop: Sequence[str] | None) -> int | None:
    """Where the first of the ``stop`` strings starts in ``text`` (None: none occurs)."""
    positions = [text.find(s) for s in stop or () if s and s in text]
    return min(positions) if positions else None


def held_back(text: str, stop: Sequence[str] | None) -> int:
    """How many characters at the end of ``text`` could be the start of a stop string
    (a stream holds them back until the next text says whether a stop string follows)."""
    longest = 0
    for s in stop or ():
        for size in range(min(len(s) - 1, len(text)), longest, -1):
            if text.endswith(s[:size]):
                longest = size
                break
    return longest


def usage_metadata(prompt_tokens: int, output_tokens: int) -> dict[str, int]:
    """An ``AIMessage.usage_metadata``."""
    return {
        "input_tokens": prompt_tokens,
        "output_tokens": output_tokens,
        "total_tokens": prompt_tokens + output_tokens,
    }


def text_chunk(text: str) -> ChatGenerationChunk:
    """One piece of a streamed completion."""
    return ChatGenerationChunk(message=AIMessageChunk(content=text))


def last_chunk(text: str, sample: Sample, *, prompt_tokens: int, model_name: str) -> Any:
    """The last piece of a streamed completion: its rest of the text, the usage of the
    whole call, and the ``response_metadata`` :func:`chat_result` gives a message."""
    message = AIMessageChunk(
        content=text,
        response_metadata=sample_metadata(sample, model_name),
        usage_metadata=usage_metadata(prompt_tokens, sample.output_tokens),
        chunk_position="last",
    )
    return ChatGenerationChunk(message=message)


def sample_metadata(sample: Sample, model_name: str) -> dict[str, Any]:
    """``finish_reason``, ``model_name`` and (when asked) ``logprobs`` of one completion."""
    metadata: dict[str, Any] = {"finish_reason": sample.finish_reason, "model_name": model_name}
    if sample.logprobs is not None:
        metadata["logprobs"] = {"content": sample.logprobs}
    return metadata


@dataclass
class Sample:
    """One decoded completion."""

    text: str
    finish_reason: str | None
    output_tokens: int
    logprobs: list[dict[str, Any]] | None  # OpenAI-format entries, when asked for


def chat_result(samples: Sequence[Sample], *, prompt_tokens: int, model_name: str) -> ChatResult:
    """The completions of one prompt as ``ChatOpenAI`` returns them from a server: per
    message ``usage_metadata`` and ``response_metadata`` (``finish_reason``, ``model_name``,
    ``logprobs`` when asked), and the call's ``token_usage``."""
    generations = []
    for sample in samples:
        metadata = sample_metadata(sample, model_name)
        message = AIMessage(
            content=sample.text,
            response_metadata=metadata,
            usage_metadata=usage_metadata(prompt_tokens, sample.output_tokens),
        )
        generations.append(ChatGeneration(message=message, generation_info=dict(metadata)))
    completion = sum(s.output_tokens for s in samples)
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": prompt_tokens + completion,
    }
    return ChatResult(generations=generations, llm_output={"token_usage": usage})
