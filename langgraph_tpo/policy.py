"""Calling the policy: N samples in one request when the chat model supports ``n``.

Every call runs under the calling node's callbacks (so handlers, ``stream_mode="messages"``,
``astream_events`` and LangSmith see it) and says which TPO step made it: tag
``tpo:<step>``, metadata ``tpo_step``, run name ``tpo:<step>``, and, for OpenAI-compatible
chat models, the HTTP header ``X-TPO-Step``. Test doubles tell the steps apart by these,
never by the prompt's wording.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, convert_to_messages
from langchain_core.outputs import ChatGeneration, ChatResult, LLMResult
from langchain_core.runnables.config import ensure_config
from langgraph.config import get_config

from langgraph_tpo.config import TPOConfig
from langgraph_tpo.errors import (
    ConfigError,
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
    # per text, why the backend ended it ("stop", "length", ...; None when not reported)
    finish_reasons: list[str | None] = field(default_factory=list)

    def cut_at_max_tokens(self) -> list[str]:
        """The texts the backend ended at ``max_tokens`` (finish reason ``length``)."""
        return [t for t, r in zip(self.texts, self.finish_reasons, strict=False) if r == "length"]


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


PENALTIES = ("frequency_penalty", "presence_penalty", "repetition_penalty")
# Not an OpenAI parameter: vLLM's server reads it from the request body's extra fields.
BODY_PENALTY = "repetition_penalty"


# What a chat model class can do does not change, and these checks run on every policy call.
@cache
def _is_openai_class(cls: type) -> bool:
    return any(c.__name__ == "BaseChatOpenAI" for c in cls.__mro__)


@cache
def _may_forward(cls: type) -> bool:
    """Whether the class has a ``clients`` field or attribute (looking one up on a pydantic
    model that has none raises inside pydantic: slow on every call)."""
    return hasattr(cls, "clients") or "clients" in getattr(cls, "model_fields", {})


@cache
def _has_extra_body(cls: type) -> bool:
    return "extra_body" in getattr(cls, "model_fields", {})


@cache
def _declared_penalties(cls: type) -> frozenset[str]:
    """The penalties among the per-call kwargs a class declares in ``SAMPLING_KWARGS``."""
    return frozenset(PENALTIES).intersection(getattr(cls, "SAMPLING_KWARGS", ()))


@cache
def _streams(cls: type) -> bool:
    return cls._astream is not BaseChatModel._astream or cls._stream is not BaseChatModel._stream


STEPS = ("sample", "textual_loss", "textual_gradient", "update")
CRITIQUE_STEPS = frozenset({"textual_loss", "textual_gradient"})
STEP_HEADER = "X-TPO-Step"


def step_tag(step: str) -> str:
    return f"tpo:{step}"


def max_tokens_for(config: TPOConfig, step: str) -> int:
    """``critique_max_tokens`` (unset: ``max_tokens``) for the critique steps, ``max_tokens``
    for responses."""
    if step in CRITIQUE_STEPS and config.critique_max_tokens is not None:
        return config.critique_max_tokens
    return config.max_tokens


def is_openai_compatible(model: Any) -> bool:
    """True for langchain_openai chat models (they pass ``extra_headers`` to the HTTP call),
    and for models that forward their calls to such clients (``clients``, e.g. the
    several-server ``BalancedChatModel``)."""
    if _is_openai_class(type(model)):
        return True
    clients = getattr(model, "clients", None) if _may_forward(type(model)) else None
    return isinstance(clients, list) and bool(clients) and all(map(is_openai_compatible, clients))


def streams(model: BaseChatModel) -> bool:
    return _streams(type(model))


def step_options(step: str, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """The keyword arguments that put one call under the current run, labelled by ``step``.

    The callbacks are those of the node running now (LangGraph sets them in the context),
    so the call is a child of the node's run.
    """
    try:
        parent = get_config()  # the running node's config, as is (ensure_config copies it)
    except RuntimeError:  # called outside a graph or runnable
        parent = ensure_config()
    tag = step_tag(step)
    return {
        "callbacks": parent.get("callbacks"),
        "tags": [tag],
        "metadata": {"tpo_step": step, **metadata} if metadata else {"tpo_step": step},
        "run_name": tag,
    }


def sampling_kwargs(
    config: TPOConfig, *, seed_offset: int = 0, step: str = "sample"
) -> dict[str, Any]:
    """The sampling kwargs of one policy call; the seed and the penalties only when set."""
    kwargs: dict[str, Any] = {
        "temperature": config.temperature,
        "top_p": config.top_p,
        "max_tokens": max_tokens_for(config, step),
    }
    if config.seed is not None:
        kwargs["seed"] = config.seed + seed_offset
    penalties = set_penalties(config)
    if penalties:
        kwargs.update(penalties)
    return kwargs


def set_penalties(config: TPOConfig) -> dict[str, float]:
    """The repetition controls ``config`` sets (none by default, as the paper)."""
    found: dict[str, float] = {}
    for name in PENALTIES:  # a plain loop: this runs on every policy call
        value = getattr(config, name)
        if value is not None:
            found[name] = value
    return found


def accepted_penalties(policy: BaseChatModel) -> frozenset[str]:
    """The penalties ``policy`` applies: all for OpenAI-compatible models, those a class lists
    in its ``SAMPLING_KWARGS``
    (:class:`~langgraph_tpo.backends.plumbing.chat_base.SamplingChatModel` does), none for
    any other chat model."""
    if is_openai_compatible(policy):
        return frozenset(PENALTIES)
    return _declared_penalties(type(policy))


def check_penalties(policy: BaseChatModel, config: TPOConfig) -> None:
    """A :class:`ConfigError` naming the field and the model class when ``config`` sets a
    penalty ``policy`` cannot apply (checked before any model call, not silently dropped)."""
    wanted = set_penalties(config)
    if not wanted:
        return
    missing = [name for name in wanted if name not in accepted_penalties(policy)]
    if missing:
        raise ConfigError(
            f"the policy {type(policy).__name__} cannot apply {' or '.join(missing)}: unset "
            f"{'it' if len(missing) == 1 else 'them'}, or use a policy that can (an "
            "OpenAI-compatible server, in-process vLLM or transformers)"
        )


def openai_request(model: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` for an OpenAI-compatible ``model``: ``repetition_penalty`` moved into
    ``extra_body``, and a call's ``extra_body`` merged over the model's own (a call kwarg
    would replace it in ``ChatOpenAI``'s request)."""
    if BODY_PENALTY in kwargs:
        kwargs = dict(kwargs)
        extra = {**(kwargs.get("extra_body") or {}), BODY_PENALTY: kwargs.pop(BODY_PENALTY)}
        kwargs["extra_body"] = extra
    own = getattr(model, "extra_body", None) if _has_extra_body(type(model)) else None
    if own and "extra_body" in kwargs:
        kwargs = {**kwargs, "extra_body": {**own, **kwargs["extra_body"]}}
    return kwargs


async def generate(
    policy: BaseChatModel,
    messages: Sequence[BaseMessage | tuple[str, str] | dict[str, Any]],
    n: int,
    config: TPOConfig,
    *,
    step: str = "sample",
    seed_offset: int = 0,
    metadata: dict[str, Any] | None = None,
    stop: Sequence[str] | None = None,
) -> Generations:
    """Draw ``n`` texts for one prompt: one request with ``n`` when supported, else n calls.

    ``step`` labels the call (see the module docstring); ``metadata`` is added to its run;
    ``stop`` (when given) is passed to the chat model as its stop sequences.
    A request for ``n > 1`` samples is not streamed: LangChain would merge the N streams
    into one message.
    """
    prompt = (
        list(messages)
        if all(isinstance(m, BaseMessage) for m in messages)
        else convert_to_messages(messages)
    )
    options = step_options(step, metadata)
    openai = is_openai_compatible(policy)

    def call_kwargs(offset: int, count: int) -> dict[str, Any]:
        kwargs = sampling_kwargs(config, seed_offset=offset, step=step)
        if stop:
            kwargs["stop"] = list(stop)
        if count > 1:
            kwargs["n"] = count
            if streams(policy):
                kwargs["stream"] = False
        if openai:
            kwargs["extra_headers"] = {STEP_HEADER: step}
            return openai_request(policy, kwargs)
        return kwargs

    try:
        if n == 1 or supports_n(policy):
            result = await policy.agenerate([prompt], **options, **call_kwargs(seed_offset, n))
            return _collect([result])
        results = await asyncio.gather(
            *(
                policy.agenerate([prompt], **options, **call_kwargs(seed_offset + i, 1))
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
    reasons: list[str | None] = []
    usage: Usage | None = None
    for result in results:
        generations = [g for batch in result.generations for g in batch]
        texts += map(_text, generations)
        reasons += map(finish_reason, generations)
        this = _usage(result, generations)
        usage = this if usage is None else usage.add(this)
    return Generations(texts, usage or Usage(), reasons)


def finish_reason(generation: Any) -> str | None:
    """Why the backend ended a generation, as it reported it: ``generation_info`` (the
    OpenAI client) or the message's ``response_metadata`` (the in-process models)."""
    info = getattr(generation, "generation_info", None) or {}
    meta = getattr(getattr(generation, "message", None), "response_metadata", None) or {}
    reason = info.get("finish_reason") or meta.get("finish_reason")
    return str(reason) if reason else None


def _text(generation: Any) -> str:
    """A generation's text: a chat message's ``BaseMessage.text`` (its text blocks, joined),
    else the generation's own ``text``."""
    if isinstance(generation, ChatGeneration):
        return generation.message.text
    return str(getattr(generation, "text", ""))


def _usage(result: LLMResult | ChatResult, generations: list[Any]) -> Usage:
    prompt = completion = 0
    token_usage = (getattr(result, "llm_output", None) or {}).get("token_usage") or {}
    if token_usage:
        prompt = int(token_usage.get("prompt_tokens") or 0)
        completion = int(token_usage.get("completion_tokens") or 0)
    else:
        for g in generations:
            meta = getattr(getattr(g, "message", None), "usage_metadata", None)
            if meta:
                completion += int(meta.get("output_tokens") or 0)
                prompt = max(prompt, int(meta.get("input_tokens") or 0))
    return Usage(
        requests=1, generations=len(generations), prompt_tokens=prompt, completion_tokens=completion
    )
