"""Prompt sets: one LangChain ``ChatPromptTemplate`` per TPO step, replaceable as a whole.

A :class:`PromptSet` holds the prompts of every step that calls the policy:

- ``sample``: messages put before the conversation in initial sampling (a system prompt);
- ``textual_loss`` / ``textual_loss_revision``: the critique, of chosen against rejected,
  or of chosen alone (revision mode, or when chosen is the only distinct text);
- ``textual_gradient``: turns the critique into suggestions;
- ``update``: asks for the rewrite, written between ``update_start`` and ``update_end``.

The variables each template may use are in :data:`STEP_VARIABLES` (docs/prompts.md has them as
a table). Quoted texts are inserted byte for byte: the only structure a query could try to
forge is the update delimiters, and those carry a per-run nonce (``{nonce}``) that
extraction checks. Two sets are built in: ``paper`` (the default, the paper's information
flow) and ``compact`` (shorter prompts; the update sees query, chosen and suggestions only).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from pathlib import Path
from string import Formatter
from typing import Any

import yaml
from langchain_core.messages import BaseMessage
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.prompts.chat import BaseMessagePromptTemplate

from langgraph_tpo.errors import ConfigError

STEPS = ("sample", "textual_loss", "textual_loss_revision", "textual_gradient", "update")


@dataclass(frozen=True)
class Variables:
    """What a step's template may use (``allowed``) and must use (``required``)."""

    required: frozenset[str]
    optional: frozenset[str] = frozenset()

    @property
    def allowed(self) -> frozenset[str]:
        return self.required | self.optional


_QUOTED = frozenset({"query", "chosen"})
STEP_VARIABLES: dict[str, Variables] = {
    "sample": Variables(frozenset(), frozenset({"query"})),
    "textual_loss": Variables(_QUOTED | {"rejected"}),
    "textual_loss_revision": Variables(_QUOTED),
    "textual_gradient": Variables(
        frozenset({"textual_loss"}), _QUOTED | {"rejected", "loss_messages"}
    ),
    "update": Variables(
        frozenset({"textual_gradient", "start", "end"}),
        _QUOTED | {"rejected", "textual_loss", "num_samples", "gradient_messages"},
    ),
}
MESSAGE_VARIABLES = frozenset({"loss_messages", "gradient_messages"})
ROLES = {"system": "system", "human": "human", "user": "human", "ai": "ai", "assistant": "ai"}

MessageSpec = tuple[str, str]
TemplateLike = ChatPromptTemplate | Sequence[MessageSpec | Mapping[str, str] | BaseMessage]


def as_template(step: str, value: TemplateLike) -> ChatPromptTemplate:
    """A ChatPromptTemplate from a template or a list of ``(role, text)`` / ``{role, content}``."""
    if isinstance(value, ChatPromptTemplate):
        return value
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigError(f"prompt step {step!r}: expected a list of messages, got {value!r}")
    messages: list[Any] = []
    for item in value:
        if isinstance(item, Mapping):
            messages.append(_spec(step, item.get("role"), item.get("content")))
        elif isinstance(item, BaseMessage):
            messages.append(item)
        elif isinstance(item, Sequence) and len(item) == 2:
            messages.append(_spec(step, item[0], item[1]))
        else:
            raise ConfigError(f"prompt step {step!r}: not a message: {item!r}")
    try:
        return ChatPromptTemplate.from_messages(messages)
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"prompt step {step!r}: {exc}") from exc


def _spec(step: str, role: Any, content: Any) -> MessageSpec:
    if not isinstance(content, str):
        raise ConfigError(f"prompt step {step!r}: message content must be text, got {content!r}")
    if role == "placeholder":
        return ("placeholder", content)
    if role not in ROLES:
        raise ConfigError(
            f"prompt step {step!r}: unknown role {role!r} (use system, human, ai or placeholder)"
        )
    return (ROLES[role], content)


def used_variables(template: ChatPromptTemplate) -> set[str]:
    return set(template.input_variables) | set(template.optional_variables)


def check_template(step: str, template: ChatPromptTemplate) -> None:
    """ConfigError naming the step and the variable when the template uses one it may not
    use, or lacks one its step needs."""
    spec = STEP_VARIABLES[step]
    used = used_variables(template)
    unknown = sorted(used - spec.allowed)
    if unknown:
        raise ConfigError(
            f"prompt step {step!r}: unknown template variable {{{unknown[0]}}}; "
            f"{step} may use {', '.join('{' + v + '}' for v in sorted(spec.allowed)) or 'none'}"
        )
    missing = sorted(spec.required - used)
    if missing:
        raise ConfigError(
            f"prompt step {step!r}: the template must use the variable {{{missing[0]}}}"
        )
    for message in template.messages:
        if isinstance(message, MessagesPlaceholder):
            if message.variable_name not in MESSAGE_VARIABLES:
                raise ConfigError(
                    f"prompt step {step!r}: placeholder {{{message.variable_name}}} must be "
                    "loss_messages or gradient_messages"
                )
        elif isinstance(message, BaseMessagePromptTemplate):
            inside = used_variables(ChatPromptTemplate.from_messages([message])) & (
                MESSAGE_VARIABLES
            )
            if inside:
                raise ConfigError(
                    f"prompt step {step!r}: {{{sorted(inside)[0]}}} is a list of messages; "
                    "use it as a placeholder message (role: placeholder)"
                )


def check_delimiters(start: str, end: str) -> None:
    for name, value in (("update_start", start), ("update_end", end)):
        names = {f for _, f, _, _ in Formatter().parse(value) if f is not None}
        if names != {"nonce"}:
            raise ConfigError(
                f"prompt set: {name} must contain {{nonce}} and no other variable, got {value!r}"
            )
    if start == end:
        raise ConfigError("prompt set: update_start and update_end must differ")


@dataclass(frozen=True)
class PromptSet:
    """The prompts of every TPO step; see the module docstring and :data:`STEP_VARIABLES`.

    Templates may be given as ChatPromptTemplates or as lists of ``(role, text)`` pairs;
    roles are system, human, ai and placeholder (``("placeholder", "{loss_messages}")``
    inserts a list of messages). Invalid sets raise ``ConfigError`` when built.
    """

    name: str
    sample: ChatPromptTemplate
    textual_loss: ChatPromptTemplate
    textual_loss_revision: ChatPromptTemplate
    textual_gradient: ChatPromptTemplate
    update: ChatPromptTemplate
    update_start: str = "<improved_response_{nonce}>"
    update_end: str = "</improved_response_{nonce}>"
    scaffolding: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigError("prompt set: 'name' must be a non-empty string")
        for step in STEPS:
            template = as_template(step, getattr(self, step))
            check_template(step, template)
            object.__setattr__(self, step, template)
        check_delimiters(self.update_start, self.update_end)
        object.__setattr__(self, "scaffolding", frozenset(self._scaffolding_lines()))

    # -- delimiters and scaffolding ------------------------------------------------------

    def delimiters(self, nonce: str) -> tuple[str, str]:
        """The update delimiters of a run with ``nonce``."""
        return self.update_start.format(nonce=nonce), self.update_end.format(nonce=nonce)

    @cached_property
    def delimiter_pattern(self) -> re.Pattern[str]:
        """Matches either delimiter with any nonce (to recognise echoed scaffolding), also
        one cut short after its nonce (an output that ran out of tokens there)."""
        parts = []
        for delimiter in (self.update_start, self.update_end):
            before, _, after = delimiter.format(nonce="\x00").partition("\x00")
            parts.append(re.escape(before) + r"\w*" + (f"(?:{re.escape(after)})?" if after else ""))
        return re.compile("|".join(parts), re.IGNORECASE)

    def _scaffolding_lines(self) -> Iterable[str]:
        for step in STEPS:
            for message in getattr(self, step).messages:
                prompt = getattr(message, "prompt", None)
                text = getattr(prompt, "template", None)
                if not isinstance(text, str):
                    continue
                literal = "\n".join(lit for lit, *_ in Formatter().parse(text))
                for line in literal.splitlines():
                    line = _normal(line)
                    if len(line) >= 3 and any(c.isalpha() for c in line):
                        yield line

    def is_scaffolding(self, text: str) -> bool:
        """True when ``text`` is nothing but this set's own headers, instructions or
        delimiters echoed back (with any nonce)."""
        rest = self.delimiter_pattern.sub("\n", text)
        lines = [_normal(line) for line in rest.splitlines()]
        lines = [line for line in lines if line]
        return bool(text.strip()) and all(line in self.scaffolding for line in lines)

    # -- files -----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The set as the file format reads it (``name``, delimiters, one list per step)."""
        data: dict[str, Any] = {
            "name": self.name,
            "update_start": self.update_start,
            "update_end": self.update_end,
        }
        for step in STEPS:
            data[step] = [_message_dict(m) for m in getattr(self, step).messages]
        return data

    def to_yaml(self) -> str:
        return yaml.dump(
            self.to_dict(), Dumper=_LiteralDumper, sort_keys=False, allow_unicode=True, width=88
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "prompt set") -> PromptSet:
        known = {f.name for f in fields(cls)} - {"scaffolding"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown key {unknown[0]!r}; expected {sorted(known)}")
        missing = [step for step in ("name", *STEPS) if step not in data]
        if missing:
            raise ConfigError(f"{source}: missing {missing[0]!r}")
        try:
            return cls(**dict(data))
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from exc

    @classmethod
    def from_file(cls, path: str | Path) -> PromptSet:
        """Read a set from YAML (``.yaml``/``.yml``/``.json``) or TOML (``.toml``)."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the prompt set: {exc.strerror}") from exc
        try:
            data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
        except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: cannot parse the prompt set: {exc}") from exc
        if not isinstance(data, Mapping):
            raise ConfigError(f"{path}: expected a mapping with name, update_start, ... keys")
        return cls.from_dict(data, source=str(path))

    def renamed(self, name: str) -> PromptSet:
        return replace(self, name=name)


def _normal(line: str) -> str:
    return " ".join(line.split()).strip(" .:-=#*[]").lower()


def _message_dict(message: Any) -> dict[str, str]:
    if isinstance(message, MessagesPlaceholder):
        return {"role": "placeholder", "content": "{" + message.variable_name + "}"}
    if isinstance(message, BaseMessage):
        text = str(message.content).replace("{", "{{").replace("}", "}}")
        return {"role": message.type, "content": text}
    role = {"SystemMessagePromptTemplate": "system", "AIMessagePromptTemplate": "ai"}.get(
        type(message).__name__, "human"
    )
    return {"role": role, "content": message.prompt.template}


class _LiteralDumper(yaml.SafeDumper):
    """Multi-line strings as ``|`` blocks, so a dumped set reads (and edits) like the prompt."""


def _str_presenter(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value and not value.endswith((" ", "\t")) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_LiteralDumper.add_representer(str, _str_presenter)
