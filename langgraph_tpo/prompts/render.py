"""Turning a prompt set and the run's texts into the messages of each policy call.

Every quoted text goes in byte for byte. The only structure a text could forge is the
update delimiters; they carry a per-run nonce (:func:`make_nonce`) that no quoted text
contains (:func:`safe_nonce`), and extraction accepts only delimiters with that nonce.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    convert_to_messages,
)
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder, PromptTemplate

from langgraph_tpo.prompts.sets import PromptSet, used_variables

NONCE_CHARS = 8


@dataclass(frozen=True)
class Quoted:
    """The texts a critique-side prompt quotes, already cut to the token cap."""

    query: str
    chosen: str
    rejected: str | None  # None: revision mode, or chosen is the only distinct text
    textual_loss: str = ""
    textual_gradient: str = ""


def make_nonce(seed: int | None, conversation: Sequence[dict[str, str]]) -> str:
    """A run's delimiter nonce: random, or derived from seed and conversation when seeded
    (so a seeded run sends the same prompts every time)."""
    if seed is None:
        return secrets.token_hex(NONCE_CHARS // 2)
    key = json.dumps([seed, list(conversation)], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(key.encode()).hexdigest()[:NONCE_CHARS]


def safe_nonce(nonce: str, texts: Sequence[str | None]) -> str:
    """``nonce``, or a derived one, that none of ``texts`` contains (a guessed nonce in a
    quoted text is therefore never the one extraction accepts)."""
    while any(text and nonce in text for text in texts):
        nonce = hashlib.sha256(nonce.encode()).hexdigest()[:NONCE_CHARS]
    return nonce


Compiled = tuple[tuple[Any, str], ...]  # (message class, text) or (None, placeholder name)
_ROLE_CLASSES: dict[str, type[BaseMessage]] = {
    "SystemMessagePromptTemplate": SystemMessage,
    "HumanMessagePromptTemplate": HumanMessage,
    "AIMessagePromptTemplate": AIMessage,
}
_compiled: dict[int, tuple[ChatPromptTemplate, Compiled, frozenset[str]]] = {}
# The messages last rendered from the same template and texts. An iteration renders the
# loss messages three times (loss, gradient and update calls) and the gradient messages
# twice; the calls then share the same message objects, which chat models only read.
_rendered: dict[tuple[Any, ...], tuple[ChatPromptTemplate, dict[str, Any], list[BaseMessage]]] = {}
_RENDERED_MAX = 64


def _compile(template: ChatPromptTemplate) -> tuple[Compiled, frozenset[str]] | None:
    """The template as (message class, f-string) pairs, or None when it holds parts only
    LangChain can render (then :func:`_render` lets it)."""
    parts: list[tuple[Any, str]] = []
    for message in template.messages:
        if isinstance(message, MessagesPlaceholder):
            parts.append((None, message.variable_name))
            continue
        prompt = getattr(message, "prompt", None)
        cls = _ROLE_CLASSES.get(type(message).__name__)
        if (
            cls is None
            or getattr(message, "additional_kwargs", None)
            or not isinstance(prompt, PromptTemplate)
            or prompt.template_format != "f-string"
            or prompt.partial_variables
        ):
            return None
        parts.append((cls, prompt.template))
    return tuple(parts), frozenset(used_variables(template))


def _render(
    template: ChatPromptTemplate, values: dict[str, Callable[[], Any]]
) -> list[BaseMessage]:
    """Format ``template`` with the values it uses (computed only when used).

    Plain f-string templates (every built-in one) are formatted directly: the same result
    as ``format_messages``, several times faster, which matters since every iteration
    renders the loss prompt three times (loss, gradient and update calls).
    """
    entry = _compiled.get(id(template))
    if entry is None or entry[0] is not template:
        compiled = _compile(template)
        if compiled is None:
            names = used_variables(template)
            return template.format_messages(**{name: values[name]() for name in names})
        entry = (template, *compiled)
        _compiled[id(template)] = entry
    _, parts, names = entry
    given = {name: values[name]() for name in names}
    key = (id(template), *(_key_part(v) for v in given.values()))
    hit = _rendered.get(key)
    if hit is not None and hit[0] is template:
        return list(hit[2])
    messages: list[BaseMessage] = []
    for cls, text in parts:
        if cls is None:
            inserted = given.get(text) or []
            if not all(isinstance(m, BaseMessage) for m in inserted):
                inserted = convert_to_messages(inserted)
            messages.extend(inserted)
        else:
            messages.append(cls(content=text.format_map(given)))
    if len(_rendered) >= _RENDERED_MAX:
        _rendered.clear()
    _rendered[key] = (template, given, messages)  # ``given`` keeps the ids in ``key`` alive
    return list(messages)


def _key_part(value: Any) -> Any:
    """A text as is; inserted messages by identity (``given`` keeps them alive)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return tuple(id(m) for m in value)
    return id(value)


def _texts(q: Quoted) -> dict[str, Callable[[], Any]]:
    return {
        "query": lambda: q.query,
        "chosen": lambda: q.chosen,
        "rejected": lambda: q.rejected or "",
        "textual_loss": lambda: q.textual_loss,
        "textual_gradient": lambda: q.textual_gradient,
    }


def loss_messages(prompts: PromptSet, q: Quoted) -> list[BaseMessage]:
    """The textual loss: chosen against rejected, or chosen alone (``rejected`` None)."""
    template = prompts.textual_loss if q.rejected is not None else prompts.textual_loss_revision
    return _render(template, _texts(q))


def gradient_messages(prompts: PromptSet, q: Quoted) -> list[BaseMessage]:
    """The textual gradient; ``{loss_messages}`` is the loss call's messages."""
    values = {**_texts(q), "loss_messages": lambda: loss_messages(prompts, q)}
    return _render(prompts.textual_gradient, values)


def update_messages(
    prompts: PromptSet, q: Quoted, delimiters: tuple[str, str], num_samples: int = 1
) -> list[BaseMessage]:
    """The update; ``{gradient_messages}`` is the gradient call's messages."""
    start, end = delimiters
    values = {
        **_texts(q),
        "gradient_messages": lambda: gradient_messages(prompts, q),
        "start": lambda: start,
        "end": lambda: end,
        "num_samples": lambda: str(num_samples),
    }
    return _render(prompts.update, values)


def sample_messages(
    prompts: PromptSet, conversation: Sequence[dict[str, str]]
) -> list[BaseMessage]:
    """The set's ``sample`` messages, then the conversation; the set's system messages are
    left out when the conversation starts with a system message of its own."""
    turns = convert_to_messages([dict(m) for m in conversation])
    query = next((m["content"] for m in reversed(conversation) if m["role"] == "user"), "")
    prefix = _render(prompts.sample, {"query": lambda: query})
    if turns and isinstance(turns[0], SystemMessage):
        prefix = [m for m in prefix if not isinstance(m, SystemMessage)]
    return [*prefix, *turns]
