"""The published layouts of the paper's benchmarks, as ``tpo eval`` reads them.

Each layout was read in the benchmark's own repository or dataset card:

* ``alpaca_eval``: tatsu-lab/alpaca_eval, the evaluation set ``alpaca_eval.json`` on the hub
  and ``src/alpaca_eval/utils.py`` (``load_or_convert_to_dataframe``): records with
  ``instruction``, ``dataset`` (and the reference ``output``, ``generator``). No id.
* ``arena_hard_v0.1``: lmarena/arena-hard-auto, ``data/arena-hard-v0.1/question.jsonl``:
  ``question_id``, ``category``, ``cluster``, ``turns: [{"content": ...}]``.
* ``arena_hard_v2``: lmarena/arena-hard-auto, ``src/arenahard/gen_judgment.py`` and
  ``gen_answer.py`` (questions read as ``uid``, ``category``, ``subcategory``, ``prompt``).
* ``hh_rlhf``: anthropics/hh-rlhf ``README.md`` and its ``*/test.jsonl.gz`` files: records
  with ``chosen`` and ``rejected`` transcripts ``"\\n\\nHuman: ...\\n\\nAssistant: ..."``.
  The conversation is ``chosen`` split into turns, ending with the last human turn (the
  final assistant answer, the one being compared, is dropped). No id.
* ``beavertails``: the PKU-Alignment/BeaverTails dataset card (``prompt``, ``response``,
  ``category``: a mapping of the 14 harm categories to booleans, ``is_safe``) and
  PKU-Alignment/BeaverTails-Evaluation (``prompt``, ``category``, ``category_id``). No id.
  A ``category`` mapping is kept as the list of the categories that are true.
* ``xstest``: paul-rottger/exaggerated-safety, ``xstest_prompts.csv``: ``id``, ``prompt``,
  ``type``, ``label``, ``focus``, ``note``.
* ``math500``: the HuggingFaceH4/MATH-500 dataset card: ``problem``, ``solution``,
  ``answer``, ``subject``, ``level``, ``unique_id``. ``answer`` is kept as ``reference``.
* ``chat``: any record with ``messages`` (OpenAI chat format: ``role`` and ``content``);
  trailing assistant turns are dropped so the conversation ends with the user's turn.
* ``plain``: the original ``tpo eval`` input: a string, or a record with ``prompt`` (or
  ``query``, or ``instruction``) and an optional ``id``.

Any record's ``reference`` field (a reference answer) is kept too, as a verifier reward reads
it (``tpo eval --reward math``).

``auto`` takes the first layout (in the order above, most specific first) whose fields the
first record (or the CSV/Parquet header) has; every record is then read with that layout.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from langgraph_tpo.errors import ConfigError

PROMPT_FIELDS = ("prompt", "query", "instruction")
ID_FIELD = "id"
REFERENCE = "reference"  # a reference answer: MATH-500's ``answer``, or any record's own
# Fields kept in each result line when the data has them (for breakdowns by category).
CATEGORY_FIELDS = ("dataset", "category", "subcategory", "cluster", "type", "label", "subject",
                   "level")  # fmt: skip
CHAT_ROLES = ("system", "user", "assistant")
_PLAIN_TEXT = "'prompt' (or 'query', or 'instruction')"
_HH_TURN = re.compile(r"\n\n(Human|Assistant):[ \t]?")

Message = dict[str, str]


class DataError(ConfigError):
    """A dataset line or record cannot be used; the message names the line and field."""


@dataclass(frozen=True)
class PromptRecord:
    """One prompt of the dataset: the line (or row) it starts on, its text (the last user
    turn of a conversation), its id, the whole conversation when it has several turns, and
    the fields a result line keeps (``benchmark``, category-like fields, ``reference``)."""

    line: int
    prompt: str
    id: str | int | None = None
    messages: tuple[Message, ...] | None = field(default=None, hash=False)
    fields: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def text(self) -> str:
        """What identifies the prompt when it has no id: its text, or its whole conversation."""
        return self.prompt if self.messages is None else conversation_text(self.messages)

    def graph_input(self) -> dict[str, Any]:
        """The TPO graph's input: ``{"query": ...}``, or ``{"messages": [...]}``, with the
        kept fields as ``row`` (what a verifier reward reads, e.g. ``reference``)."""
        if self.messages is None:
            return {"query": self.prompt, "row": dict(self.fields)}
        return {"messages": [dict(m) for m in self.messages], "row": dict(self.fields)}


def conversation_text(messages: Any) -> str:
    """A conversation as one stable string (the role and text of each turn)."""
    return "\n".join(f"{m.get('role')}: {m.get('content')}" for m in messages)


@dataclass(frozen=True)
class Row:
    """A record of the file, where it starts (``line 3``, ``row 3``) and what it is."""

    line: int
    value: Any
    what: str = "record"
    unit: str = "line"


Reader = Callable[[Mapping[str, Any], str], "str | list[Message]"]


@dataclass(frozen=True)
class BenchmarkFormat:
    """A published layout: the fields that identify it, how its prompt is read, and which
    fields hold the benchmark's own id and a reference answer."""

    name: str
    identifying: tuple[tuple[str, ...], ...]  # any one of these sets of fields, all present
    read_prompt: Reader
    id_field: str | None = None
    reference_field: str | None = None

    def matches(self, fields: set[str]) -> bool:
        return any(all(f in fields for f in group) for group in self.identifying)

    def describe(self) -> str:
        groups = (", ".join(repr(f) for f in group) for group in self.identifying)
        return f"{self.name} ({' or '.join(groups)})"

    def record(self, where: str, row: Row) -> PromptRecord:
        """The prompt of ``row``, or a DataError naming its line and the field."""
        value = row.value
        if isinstance(value, str) and self.name == "plain":
            if not value.strip():
                raise DataError(f"{where}: {row.what} is an empty prompt")
            return PromptRecord(row.line, value)
        if not isinstance(value, Mapping):
            wanted = _PLAIN_TEXT if self.name == "plain" else ", ".join(self.identifying[0])
            raise DataError(
                f"{where}: {row.what} must be {'a string or ' if self.name == 'plain' else ''}"
                f"an object with a {wanted} field, got {type(value).__name__}"
            )
        prompt = self.read_prompt(value, where)
        record_id = _read_id(value, self.id_field, where)
        fields = {"benchmark": self.name, **kept_fields(value)}
        if self.reference_field is not None:
            fields[REFERENCE] = str(_required(value, self.reference_field, where))
        elif value.get(REFERENCE) is not None:
            fields[REFERENCE] = str(value[REFERENCE])
        if isinstance(prompt, str):
            return PromptRecord(row.line, prompt, record_id, None, fields)
        return _conversation_record(row.line, prompt, record_id, fields)


def _conversation_record(
    line: int, messages: list[Message], record_id: str | int | None, fields: dict[str, Any]
) -> PromptRecord:
    """A one-turn conversation is a plain prompt (same graph input, same result key)."""
    last = messages[-1]["content"]
    if len(messages) == 1:
        return PromptRecord(line, last, record_id, None, fields)
    return PromptRecord(line, last, record_id, tuple(messages), fields)


def kept_fields(value: Mapping[str, Any]) -> dict[str, Any]:
    """The category-like fields of a record; a mapping of flags becomes the true ones."""
    kept = {}
    for name in CATEGORY_FIELDS:
        if value.get(name) is None:
            continue
        item = value[name]
        kept[name] = sorted(k for k, v in item.items() if v) if isinstance(item, Mapping) else item
    return kept


def _required(value: Mapping[str, Any], name: str, where: str) -> Any:
    if value.get(name) is None:
        raise DataError(f"{where}: field '{name}' missing")
    return value[name]


def _text(value: Mapping[str, Any], name: str, where: str) -> str:
    """The non-empty string in field ``name``."""
    text = _required(value, name, where)
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"{where}: field '{name}' must be a non-empty string, got {text!r}")
    return text


def _read_id(value: Mapping[str, Any], name: str | None, where: str) -> str | int | None:
    record_id = value.get(name) if name else None
    if record_id is not None and (
        isinstance(record_id, bool) or not isinstance(record_id, str | int)
    ):
        raise DataError(
            f"{where}: field '{name}' must be a string or an integer, "
            f"got {type(record_id).__name__}"
        )
    return record_id


def read_plain(value: Mapping[str, Any], where: str) -> str:
    """``prompt``, else ``query``, else ``instruction``."""
    name = next((f for f in PROMPT_FIELDS if value.get(f) is not None), None)
    if name is None:
        raise DataError(f"{where}: field 'prompt' missing: record has no {_PLAIN_TEXT} field")
    return _text(value, name, where)


def prompt_field(name: str) -> Reader:
    """A reader of the single-turn prompt in field ``name``."""
    return lambda value, where: _text(value, name, where)


def read_arena_v01(value: Mapping[str, Any], where: str) -> str:
    """The one turn of ``turns: [{"content": ...}]``."""
    turns = _required(value, "turns", where)
    if not isinstance(turns, list) or len(turns) != 1 or not isinstance(turns[0], Mapping):
        raise DataError(
            f"{where}: field 'turns' must be a list of one {{'content': ...}} object "
            f"(questions of several turns need the model's earlier answers), got {turns!r:.80}"
        )
    return _text(turns[0], "content", f"{where}: field 'turns'")


def read_messages(value: Mapping[str, Any], where: str) -> list[Message]:
    """``messages`` in OpenAI chat format, trailing assistant turns dropped."""
    messages = _required(value, "messages", where)
    if not isinstance(messages, list):
        raise DataError(f"{where}: field 'messages' must be a list, got {type(messages).__name__}")
    turns = [
        _chat_turn(message, f"{where}: field 'messages' item {number}")
        for number, message in enumerate(messages, start=1)
    ]
    return _ending_with_user(turns, f"{where}: field 'messages'")


def _chat_turn(message: Any, where: str) -> Message:
    if not isinstance(message, Mapping) or message.get("role") not in CHAT_ROLES:
        raise DataError(f"{where}: needs a 'role' ({', '.join(CHAT_ROLES)}) and a 'content'")
    content = message.get("content")
    if not isinstance(content, str):
        raise DataError(f"{where}: 'content' must be a string, got {type(content).__name__}")
    return {"role": message["role"], "content": content}


def read_hh_transcript(value: Mapping[str, Any], where: str) -> list[Message]:
    """``chosen``'s "\\n\\nHuman: ...\\n\\nAssistant: ..." turns, up to the last human turn."""
    transcript = _text(value, "chosen", where)
    parts = _HH_TURN.split(transcript)
    if parts[0].strip():
        raise DataError(f"{where}: field 'chosen' must start with '\\n\\nHuman: '")
    roles = {"Human": "user", "Assistant": "assistant"}
    turns = [
        {"role": roles[speaker], "content": text.strip()}
        for speaker, text in zip(parts[1::2], parts[2::2], strict=True)
    ]
    return _ending_with_user(turns, f"{where}: field 'chosen'")


def _ending_with_user(turns: list[Message], where: str) -> list[Message]:
    while turns and turns[-1]["role"] == "assistant":
        turns = turns[:-1]
    if not turns or turns[-1]["role"] != "user" or not turns[-1]["content"].strip():
        raise DataError(f"{where}: the conversation has no user turn to answer")
    return turns


FORMATS: tuple[BenchmarkFormat, ...] = (
    BenchmarkFormat(
        "arena_hard_v0.1", (("question_id", "turns"),), read_arena_v01, id_field="question_id"
    ),
    BenchmarkFormat("arena_hard_v2", (("uid", "prompt"),), prompt_field("prompt"), id_field="uid"),
    BenchmarkFormat(
        "math500",
        (("problem", "answer"),),
        prompt_field("problem"),
        id_field="unique_id",
        reference_field="answer",
    ),
    BenchmarkFormat("hh_rlhf", (("chosen", "rejected"),), read_hh_transcript),
    BenchmarkFormat("alpaca_eval", (("instruction", "dataset"),), prompt_field("instruction")),
    BenchmarkFormat("xstest", (("prompt", "type", "label"),), prompt_field("prompt"), ID_FIELD),
    BenchmarkFormat(
        "beavertails",
        (("prompt", "is_safe"), ("prompt", "category", "category_id")),
        prompt_field("prompt"),
    ),
    BenchmarkFormat("chat", (("messages",),), read_messages, id_field=ID_FIELD),
    BenchmarkFormat("plain", tuple((f,) for f in PROMPT_FIELDS), read_plain, id_field=ID_FIELD),
)
FORMAT_NAMES = tuple(f.name for f in FORMATS)


def format_named(name: str) -> BenchmarkFormat:
    """The layout called ``name``; a ConfigError lists the known ones."""
    for known in FORMATS:
        if known.name == name:
            return known
    raise ConfigError(
        f"--format: unknown format {name!r}; choose auto or {', '.join(FORMAT_NAMES)}"
    )


def detect_format(fields: set[str]) -> BenchmarkFormat | None:
    """The first layout (most specific first) whose identifying fields are all in ``fields``."""
    return next((f for f in FORMATS if f.matches(fields)), None)


def known_formats() -> str:
    """Every layout and the fields that identify it, for error messages."""
    return "; ".join(f.describe() for f in FORMATS)
