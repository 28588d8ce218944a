"""Calling the policy: N samples in one request when the chat model supports ``n``."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, convert_to_messages
from langchain_core.outputs import ChatGeneration, ChatResult, LLMResult

from langgraph_tpo.config import TPOConfig
from langgraph_tpo.errors import (
    ContextTooLongError,
    PolicyError,
    is_context_too_long,
    is_transient,
    redact,
)


@dataclass
class Usage:
    """What the policy was asked for and what it reported."""

    requests: int = 0
    generations: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, other: Usage) -> Usage:
        return Usage(
            self.requests + other.requests,
            self.generations + other.generations,
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class Generations:
    texts: list[str]
    usage: Usage = field(default_factory=Usage)


def sum_token_usage(llm_outputs: Sequence[dict | None]) -> dict:
    """``token_usage`` summed over the prompts of one ``generate`` call (a chat model's
    ``_combine_llm_outputs``)."""
    total: dict[str, int] = {}
    for output in llm_outputs:
        for key, value in ((output or {}).get("token_usage") or {}).items():
            total[key] = total.get(key, 0) + value
    return {"token_usage": total}


def supports_n(policy: BaseChatModel) -> bool:
    """True when the chat model draws ``n`` samples in one request (e.g. ChatOpenAI)."""
    return "n" in type(policy).model_fields


def sampling_kwargs(config: TPOConfig, *, seed_offset: int = 0) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "temperature": config.temperature,
        "top_p": config.top_p,
        "max_tokens": config.max_tokens,
    }
    if config.seed is not None:
        kwargs["seed"] = config.seed + seed_offset
    return kwargs


async def generate(
    policy: BaseChatModel,
    messages: Sequence[BaseMessage | tuple[str, str] | dict[str, Any]],
    n: int,
    config: TPOConfig,
    *,
    seed_offset: int = 0,
) -> Generations:
    """Draw ``n`` texts for one prompt: one request with ``n`` when supported, else n calls."""
    prompt = convert_to_messages(messages)
    try:
        if n == 1 or supports_n(policy):
            kwargs = sampling_kwargs(config, seed_offset=seed_offset)
            if n > 1:
                kwargs["n"] = n
            return _collect([await policy.agenerate([prompt], **kwargs)])
        results = await asyncio.gather(
            *(
                policy.agenerate([prompt], **sampling_kwargs(config, seed_offset=seed_offset + i))
                for i in range(n)
            )
        )
        return _collect(list(results))
    except PolicyError:
        raise
    except Exception as exc:
        raise policy_error(exc, policy) from exc


def describe_policy(policy: BaseChatModel) -> str:
    """Which policy: its server URL and model name when it has them, else its type."""
    url = getattr(policy, "openai_api_base", None) or getattr(policy, "base_url", None)
    model = getattr(policy, "model_name", None) or getattr(policy, "model", None)
    parts = [type(policy).__name__]
    if model:
        parts.append(f"model {model!r}")
    if url:
        parts.append(f"at {url}")
    return " ".join(parts)


def _policy_secret(policy: BaseChatModel | None) -> str | None:
    key = getattr(policy, "openai_api_key", None)
    return key.get_secret_value() if hasattr(key, "get_secret_value") else None


def policy_error(exc: Exception, policy: BaseChatModel | None = None) -> PolicyError:
    """The PolicyError for a failed call, marked transient or context-too-long, keys masked."""
    where = describe_policy(policy) if policy is not None else "policy"
    raw = f"{where} failed: {type(exc).__name__}: {exc}"
    message = redact(raw, (_policy_secret(policy),))
    if is_context_too_long(exc):
        return ContextTooLongError(message)
    error = PolicyError(message)
    error.transient = is_transient(exc)
    return error


def _collect(results: list[LLMResult]) -> Generations:
    texts: list[str] = []
    usage = Usage()
    for result in results:
        generations = [g for batch in result.generations for g in batch]
        texts.extend(_text(g) for g in generations)
        usage = usage.add(_usage(result, generations))
    return Generations(texts, usage)


def _text(generation: Any) -> str:
    if isinstance(generation, ChatGeneration):
        content = generation.message.content
        if isinstance(content, list):
            return "".join(
                part.get("text", "") if isinstance(part, dict) else str(part) for part in content
            )
        return str(content)
    return str(getattr(generation, "text", ""))


def _usage(result: LLMResult | ChatResult, generations: list[Any]) -> Usage:
    prompt = completion = 0
    token_usage = (getattr(result, "llm_output", None) or {}).get("token_usage") or {}
    if token_usage:
        prompt = int(token_usage.get("prompt_tokens") or 0)
        completion = int(token_usage.get("completion_tokens") or 0)
    else:
        for g in generations:
            meta = getattr(getattr(g, "message", None), "usage_metadata", None) or {}
            completion += int(meta.get("output_tokens") or 0)
            prompt = max(prompt, int(meta.get("input_tokens") or 0))
    return Usage(
        requests=1, generations=len(generations), prompt_tokens=prompt, completion_tokens=completion
    )
