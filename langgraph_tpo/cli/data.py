"""Read the prompts of ``tpo eval``: a JSON list, JSONL records, or a CSV table.

Every format is read and checked in full before any model work: the first malformed line
or record raises :class:`DataError` naming the file, its line number and the field.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langgraph_tpo.errors import ConfigError

PROMPT_FIELDS = ("prompt", "query", "instruction")
ID_FIELD = "id"
_FIELDS_TEXT = "'prompt' (or 'query', or 'instruction')"


class DataError(ConfigError):
    """A dataset line or record cannot be used; the message names the line and field."""


@dataclass(frozen=True)
class PromptRecord:
    """One prompt of the dataset, with the line it starts on and its optional id."""

    line: int
    prompt: str
    id: str | int | None = None


def load_prompts(path: Path) -> list[PromptRecord]:
    """All prompts of ``path``; the format comes from the suffix, else from the content."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc})") from exc
    kind = _format_of(path, text)
    reader = {"json": _read_json_list, "jsonl": _read_jsonl, "csv": _read_csv}[kind]
    records = list(reader(path, text))
    if not records:
        raise DataError(f"{path}: no prompts found")
    _check_unique_ids(path, records)
    return records


def _format_of(path: Path, text: str) -> str:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix in (".csv", ".tsv"):
        return "csv"
    head = text.lstrip()[:1]
    if head == "[":
        return "json"
    if head == "{" or head == '"':
        return "jsonl"
    if suffix == ".json":
        return "json"
    return "csv"


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _read_json_list(path: Path, text: str) -> Iterator[PromptRecord]:
    """A JSON array of strings or of records; each item's line is where it starts."""
    decoder = json.JSONDecoder()
    pos = _skip_space(text, 0)
    if not text.startswith("[", pos):
        raise DataError(f"{path}: line {_line_of(text, pos)}: expected a JSON list of prompts")
    pos = _skip_space(text, pos + 1)
    item = 0
    while not text.startswith("]", pos):
        item += 1
        line = _line_of(text, pos)
        try:
            value, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path}: line {exc.lineno}: item {item}: not valid JSON ({exc.msg})"
            ) from exc
        yield _record(path, line, value, f"item {item}")
        pos = _skip_space(text, pos)
        if text.startswith(",", pos):
            pos = _skip_space(text, pos + 1)
        elif not text.startswith("]", pos):
            raise DataError(
                f"{path}: line {_line_of(text, pos)}: expected ',' or ']' after item {item}"
            )
    if text[pos + 1 :].strip():
        raise DataError(f"{path}: line {_line_of(text, pos + 1)}: unexpected text after the list")


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _read_jsonl(path: Path, text: str) -> Iterator[PromptRecord]:
    """One JSON record (or one JSON string) per line; blank lines are skipped."""
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: line {number}: not valid JSON ({exc.msg})") from exc
        yield _record(path, number, value, "record")


def _read_csv(path: Path, text: str) -> Iterator[PromptRecord]:
    """A CSV (or TSV) table with a header row holding a prompt column (and maybe ``id``)."""
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    columns = [c.strip() for c in reader.fieldnames or []]
    reader.fieldnames = columns
    if not any(c in PROMPT_FIELDS for c in columns):
        raise DataError(
            f"{path}: line 1: no {_FIELDS_TEXT} column in the header (columns: "
            f"{', '.join(repr(c) for c in columns) or 'none'})"
        )
    start = 2
    for row in reader:
        if None in row:
            raise DataError(f"{path}: line {start}: more cells than header columns")
        if any(row.values()):
            row_id = row.get(ID_FIELD) or None
            yield _record(path, start, {**row, ID_FIELD: row_id}, "row")
        start = reader.line_num + 1


def _record(path: Path, line: int, value: Any, what: str) -> PromptRecord:
    """Turn one parsed item into a PromptRecord, or raise naming the line and field."""
    where = f"{path}: line {line}"
    if isinstance(value, str):
        if not value.strip():
            raise DataError(f"{where}: {what} is an empty prompt")
        return PromptRecord(line, value)
    if not isinstance(value, Mapping):
        raise DataError(
            f"{where}: {what} must be a string or an object with a {_FIELDS_TEXT} field, "
            f"got {type(value).__name__}"
        )
    field = next((f for f in PROMPT_FIELDS if value.get(f) is not None), None)
    if field is None:
        raise DataError(f"{where}: field 'prompt' missing: {what} has no {_FIELDS_TEXT} field")
    prompt = value[field]
    if not isinstance(prompt, str) or not prompt.strip():
        raise DataError(f"{where}: field '{field}' must be a non-empty string, got {prompt!r}")
    record_id = value.get(ID_FIELD)
    if record_id is not None and (
        isinstance(record_id, bool) or not isinstance(record_id, str | int)
    ):
        raise DataError(
            f"{where}: field 'id' must be a string or an integer, got {type(record_id).__name__}"
        )
    return PromptRecord(line, prompt, record_id)


def _check_unique_ids(path: Path, records: list[PromptRecord]) -> None:
    seen: dict[str, int] = {}
    for record in records:
        if record.id is None:
            continue
        first = seen.setdefault(str(record.id), record.line)
        if first != record.line:
            raise DataError(
                f"{path}: line {record.line}: field 'id' {record.id!r} repeats line {first}"
            )
