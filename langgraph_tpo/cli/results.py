"""The results file of ``tpo eval``: one JSON line per finished prompt and method.

Each line goes out in a single ``write`` of the full line and is fsync'd, so a killed run
leaves whole lines only; a last line without its newline (a crash mid-write, or a file
being written right now) is ignored by readers and cut off when ``tpo eval`` resumes.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langgraph_tpo.cli.benchmarks import conversation_text
from langgraph_tpo.errors import ConfigError


class ResultsError(ConfigError):
    """The results file cannot be read or written as a results file."""


def result_key(method: str, record_id: str | int | None, prompt: str) -> str:
    """What identifies a result: the method plus the prompt's id, else a hash of the prompt."""
    if record_id is not None:
        return f"{method}/id/{record_id}"
    digest = hashlib.sha256(f"{method}\n{prompt}".encode()).hexdigest()[:20]
    return f"{method}/sha256/{digest}"


def prompt_id(prompt: str) -> str:
    """The stable id of a prompt that has none in the data: ``sha256:`` and 16 hex digits of
    its text (the same in every run and for every method)."""
    return "sha256:" + hashlib.sha256(prompt.encode()).hexdigest()[:16]


def data_id(line: dict[str, Any]) -> str | int | None:
    """The id the data gave a result line's prompt, or None (the line's id was derived)."""
    return None if line.get("id_from") == "prompt" else line.get("id")


def line_text(line: dict[str, Any]) -> str:
    """What identifies a result line's prompt without an id: its ``prompt``, or for a
    conversation of several turns the whole of its ``messages``."""
    messages = line.get("messages")
    if isinstance(messages, list) and messages:
        return conversation_text(messages)
    return str(line.get("prompt", ""))


def line_key(line: dict[str, Any]) -> str:
    """The key of a result line, from its ``method``, ``id`` and prompt (or messages)."""
    return result_key(str(line.get("method")), data_id(line), line_text(line))


@dataclass
class ResultsFile:
    """The complete lines of a results file, and where its complete part ends."""

    lines: list[dict[str, Any]] = field(default_factory=list)
    complete_bytes: int = 0  # the file's length without a trailing partial line
    partial: bool = False  # the last line had no newline and was not valid JSON


def read_results(path: Path) -> ResultsFile:
    """Parse every complete line of ``path`` (missing file: empty).

    A last line with no newline is kept when it is a whole JSON object, else reported as
    ``partial``. Any other line that is not a JSON object raises, naming its line number.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return ResultsFile()
    result = ResultsFile(complete_bytes=len(data))
    raw_lines = data.split(b"\n")
    tail = raw_lines.pop()  # b"" when the file ends with a newline
    for number, raw in enumerate(raw_lines, start=1):
        if raw.strip():
            result.lines.append(_parse(path, number, raw))
    if tail.strip():
        try:
            result.lines.append(_parse(path, len(raw_lines) + 1, tail))
        except ResultsError:
            result.partial = True
            result.complete_bytes = len(data) - len(tail)
    return result


def _parse(path: Path, number: int, raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: line {number}: not a JSON results line ({exc})") from exc
    if not isinstance(value, dict):
        raise ResultsError(f"{path}: line {number}: expected a JSON object")
    return value


class ResultsWriter:
    """Appends result lines to a file it holds an exclusive lock on."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise ResultsError(f"{path} is being written by another tpo eval") from None

    def repair(self, existing: ResultsFile) -> bool:
        """Cut a trailing partial line; end a whole last line lacking its newline.

        Returns True when the file was changed.
        """
        if existing.partial:
            os.ftruncate(self._fd, existing.complete_bytes)
            os.fsync(self._fd)
            return True
        size = os.fstat(self._fd).st_size
        if size and os.pread(self._fd, 1, size - 1) != b"\n":
            self._write_all(b"\n")
            return True
        return False

    def write(self, line: dict[str, Any]) -> None:
        """Append ``line`` as one JSON line in one write, then fsync."""
        self._write_all((json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8"))

    def _write_all(self, data: bytes) -> None:
        written = os.write(self._fd, data)
        while written < len(data):  # only on a short write (e.g. disk full): finish the line
            written += os.write(self._fd, data[written:])
        os.fsync(self._fd)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)


@contextlib.contextmanager
def open_results(path: Path) -> Iterator[ResultsWriter]:
    """A locked :class:`ResultsWriter` for ``path``, closed on exit."""
    writer = ResultsWriter(path)
    try:
        yield writer
    finally:
        writer.close()
