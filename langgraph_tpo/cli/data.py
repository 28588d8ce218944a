"""Read the prompts of ``tpo eval``: a JSON list, JSONL records (optionally gzipped), a CSV
table, or (with the ``datasets`` extra) Parquet and a dataset saved with ``save_to_disk``.

Every record is read in a published benchmark layout (:mod:`langgraph_tpo.cli.benchmarks`):
forced with ``--format NAME``, else detected from the first record's fields. Every file is
read and checked in full before any model work: the first malformed line or record raises
:class:`DataError` naming the file, its line (or row) number and the field.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langgraph_tpo.cli.benchmarks import (
    FORMAT_NAMES,
    ID_FIELD,
    BenchmarkFormat,
    DataError,
    PromptRecord,
    Row,
    detect_format,
    format_named,
    known_formats,
)

__all__ = ["FORMAT_NAMES", "DataError", "Dataset", "PromptRecord", "load_dataset", "load_prompts"]

TABLE_SUFFIXES = (".parquet",)
DATASETS_EXTRA = "pip install 'langgraph-tpo[datasets]'"


@dataclass(frozen=True)
class Dataset:
    """The prompts of a file and the layout they were read in."""

    format: str
    records: list[PromptRecord]
    detected: bool


def load_prompts(path: Path, format: str = "auto") -> list[PromptRecord]:
    """All prompts of ``path`` (see :func:`load_dataset`)."""
    return load_dataset(path, format).records


def load_dataset(path: Path, format: str = "auto") -> Dataset:
    """All prompts of ``path`` read in layout ``format`` (``auto``: detected)."""
    rows, columns = read_rows(path)
    if not rows:
        raise DataError(f"{path}: no prompts found")
    layout = _layout(path, format, rows[0], columns)
    records = [layout.record(f"{path}: {row.unit} {row.line}", row) for row in rows]
    _check_unique_ids(path, records)
    return Dataset(layout.name, records, detected=format == "auto")


def _layout(path: Path, format: str, first: Row, columns: list[str] | None) -> BenchmarkFormat:
    """The forced layout (its fields checked against a table's header), else the detected one."""
    where = (
        f"{path}: line 1"
        if columns is not None and first.unit == "line"
        else (f"{path}: {first.unit} {first.line}")
    )
    if format != "auto":
        layout = format_named(format)
        if columns is not None and not layout.matches(set(columns)):
            raise DataError(f"{where}: {_has(columns, 'column')}, not those of {layout.describe()}")
        return layout
    if columns is None and isinstance(first.value, str):
        return format_named("plain")
    fields = columns if columns is not None else list(_fields_of(first.value))
    layout = detect_format(set(fields))
    if layout is None:
        what = "column" if columns is not None else "field"
        raise DataError(
            f"{where}: {_has(fields, what)}, which match no known format; formats (and the "
            f"{what}s that identify them): {known_formats()}"
        )
    return layout


def _fields_of(value: Any) -> list[str]:
    return [str(k) for k in value] if isinstance(value, dict) else []


def _has(fields: list[str], what: str) -> str:
    listed = ", ".join(repr(f) for f in fields) or "none"
    return f"has the {what}s {listed}"


def read_rows(path: Path) -> tuple[list[Row], list[str] | None]:
    """Every record of ``path`` with its line, and the header's columns (CSV, Parquet)."""
    if path.is_dir() or path.suffix.lower() in TABLE_SUFFIXES:
        return _read_table(path)
    text = _read_text(path)
    kind = _format_of(_unzipped_name(path), text)
    if kind == "csv":
        return _read_csv(_unzipped_name(path), path, text)
    reader = _read_json_list if kind == "json" else _read_jsonl
    return list(reader(path, text)), None


def _unzipped_name(path: Path) -> Path:
    return path.with_suffix("") if path.suffix.lower() == ".gz" else path


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
        if path.suffix.lower() == ".gz":
            data = gzip.decompress(data)
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc})") from exc
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot be read ({exc})") from exc


def _read_table(path: Path) -> tuple[list[Row], list[str]]:
    """A Parquet file, or a directory written by ``save_to_disk``, through ``datasets``."""
    try:
        import datasets
    except ImportError:
        raise DataError(
            f"{path}: reading Parquet files and save_to_disk directories needs the optional "
            f"'datasets' extra: {DATASETS_EXTRA}"
        ) from None
    try:
        if path.is_dir():
            table = datasets.load_from_disk(str(path), keep_in_memory=True)
        else:
            table = datasets.Dataset.from_parquet(str(path), keep_in_memory=True)
    except (OSError, ValueError, FileNotFoundError) as exc:
        raise DataError(f"{path}: not a dataset that 'datasets' can read ({exc})") from exc
    if isinstance(table, datasets.DatasetDict):
        raise DataError(
            f"{path}: holds several splits ({', '.join(table)}); give one split's directory, "
            f"e.g. {path / next(iter(table))}"
        )
    rows = [Row(n, value, "row", "row") for n, value in enumerate(table, start=1)]
    return rows, list(table.column_names)


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


def _read_json_list(path: Path, text: str) -> Iterator[Row]:
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
        yield Row(line, value, f"item {item}")
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


def _read_jsonl(path: Path, text: str) -> Iterator[Row]:
    """One JSON record (or one JSON string) per line; blank lines are skipped."""
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: line {number}: not valid JSON ({exc.msg})") from exc
        yield Row(number, value)


def _read_csv(name: Path, path: Path, text: str) -> tuple[list[Row], list[str]]:
    """A CSV (or TSV) table with a header row; an empty ``id`` cell is no id."""
    delimiter = "\t" if name.suffix.lower() == ".tsv" else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    columns = [c.strip() for c in reader.fieldnames or []]
    reader.fieldnames = columns
    rows = []
    start = 2
    for row in reader:
        if None in row:
            raise DataError(f"{path}: line {start}: more cells than header columns")
        if any(row.values()):
            rows.append(Row(start, {**row, ID_FIELD: row.get(ID_FIELD) or None}, "row"))
        start = reader.line_num + 1
    return rows, columns


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
