"""Whether a conversation fits the policy's context window with its reply, checked before
any model call.

A policy says its window through ``async acontext_window() -> int | None`` (the in-process
models from their config or engine, the vLLM server models from ``/v1/models``) and may
count a prompt's tokens exactly through ``async acount_prompt_tokens(messages) -> int``;
a user's model can instead be given ``context_window`` in the TPO config.

Counting tokens of a huge text is capped by a lower bound computed first, without a
tokenizer: the subword tokenizers of chat models never join two whitespace-separated words
into one token, and spend at least one token per ``MAX_CHARS_PER_TOKEN`` characters, so a
conversation whose words or characters already exceed the room is refused at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage

from langgraph_tpo.errors import ConfigError, PolicyError
from langgraph_tpo.policy import policy_error

MAX_CHARS_PER_TOKEN = 32  # generous: English averages about 4 characters per token


class ConversationTooLongError(ConfigError):
    """The conversation and the reply (``max_tokens``) cannot fit the context window."""


async def policy_context_window(policy: BaseChatModel) -> int | None:
    """The policy's context window in tokens, when it says (None otherwise)."""
    ask = getattr(policy, "acontext_window", None)
    return await _asked(policy, ask) if ask is not None else None


async def _asked(policy: BaseChatModel, ask: Any, *args: Any) -> Any:
    """``await ask(*args)``; a failure of the policy's own (loading the model, reaching its
    server) is a :class:`PolicyError`, as it would be at the first call."""
    try:
        return await ask(*args)
    except (ConfigError, PolicyError):
        raise
    except Exception as exc:
        raise policy_error(exc, policy) from exc


async def check_fits_context(
    policy: BaseChatModel, messages: Sequence[BaseMessage], max_tokens: int, window: int | None
) -> None:
    """A :class:`ConversationTooLongError` naming the length and the limit when ``messages``
    and a reply of ``max_tokens`` cannot fit ``window`` (None: the policy's own window;
    no check when neither is known)."""
    window = window or await policy_context_window(policy)
    if window is None:
        return
    room = window - max_tokens
    if room <= 0:
        raise ConversationTooLongError(
            f"max_tokens {max_tokens} leaves no room for the conversation in the policy's "
            f"context window of {window} tokens"
        )
    texts = [m.text for m in messages]
    chars = sum(len(t) for t in texts)
    at_least = max(chars // MAX_CHARS_PER_TOKEN, sum(len(t.split()) for t in texts))
    if at_least > room:
        raise ConversationTooLongError(
            f"the prompt (the conversation as sent to the policy) is {chars} characters "
            f"(at least {at_least} tokens), more than fits with a reply of max_tokens "
            f"{max_tokens} in the policy's context window of {window} tokens"
        )
    count = getattr(policy, "acount_prompt_tokens", None)
    if count is None:
        return
    tokens = await _asked(policy, count, list(messages))
    if tokens > room:
        raise ConversationTooLongError(
            f"the prompt (the conversation as sent to the policy) is {tokens} tokens; with a "
            f"reply of max_tokens {max_tokens} it needs {tokens + max_tokens}, over the "
            f"policy's context window of {window} tokens"
        )
