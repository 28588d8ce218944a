"""What the chat models of ``backends`` share.

:class:`ChatModelBase` writes LangChain's two entry points (``_generate``, ``_agenerate``)
once: a model implements ``_chat`` and, where its async path differs from running
``_chat`` in a worker thread, ``_achat``. :class:`SamplingChatModel` adds the sampling
fields the in-process models (transformers, vLLM) declare and a call's kwargs override,
and :func:`chat_result` is the ``ChatResult`` they return, shaped as ``ChatOpenAI``'s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

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
    """

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
        return self._chat(messages, stop, kwargs)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return await self._achat(messages, stop, kwargs)


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
        that is none of them is a :class:`ConfigError` (LangChain's ``ls_*`` are ignored)."""
        accepted = self.SAMPLING_KWARGS
        unknown = sorted(k for k in overrides if k not in accepted and not k.startswith("ls_"))
        if unknown:
            raise ConfigError(
                f"{type(self).__name__} does not support {', '.join(unknown)}; "
                f"it accepts {', '.join(accepted)}"
            )
        return {name: overrides.get(name, getattr(self, name)) for name in accepted}

    def _combine_llm_outputs(self, llm_outputs: list[dict | None]) -> dict:
        return sum_token_usage(llm_outputs)


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
        metadata: dict[str, Any] = {
            "finish_reason": sample.finish_reason,
            "model_name": model_name,
        }
        if sample.logprobs is not None:
            metadata["logprobs"] = {"content": sample.logprobs}
        message = AIMessage(
            content=sample.text,
            response_metadata=metadata,
            usage_metadata={
                "input_tokens": prompt_tokens,
                "output_tokens": sample.output_tokens,
                "total_tokens": prompt_tokens + sample.output_tokens,
            },
        )
        generations.append(ChatGeneration(message=message, generation_info=dict(metadata)))
    completion = sum(s.output_tokens for s in samples)
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": prompt_tokens + completion,
    }
    return ChatResult(generations=generations, llm_output={"token_usage": usage})
