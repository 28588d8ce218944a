"""The results file of ``tpo eval``: one JSON line per finished prompt and method.

:class:`ResultLine` is the one schema of a line: ``tpo eval`` checks each line against it
before writing, and ``tpo eval`` (resuming), ``tpo report`` and ``tpo export`` read lines
as ``ResultLine`` objects, so a malformed line is an error naming the file, the line
number and the field.

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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from langgraph_tpo.cli.benchmarks import conversation_text
from langgraph_tpo.errors import ConfigError


class ResultsError(ConfigError):
    """The results file cannot be read or written as a results file."""


class _Strict(BaseModel):
    """Numbers stay numbers (no ``"1"`` or ``true`` read as 1); unknown keys are kept."""

    model_config = ConfigDict(strict=True, extra="allow")


class ResultTimings(_Strict):
    """Wall time of the whole run and seconds per node, summed over the iterations."""

    wall_s: float | None = None
    nodes_s: dict[str, float] = {}


class ResultUsage(_Strict):
    """Policy requests, generations and tokens over the run (tokens null when the backend
    reported none)."""

    requests: int | None = None
    generations: int | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None


class ResultLine(_Strict):
    """One line of a results file: a finished prompt and method.

    Only ``method`` and ``prompt`` are required (every reader keys on them); the data's
    own fields (``benchmark``, ``subject``, ``reference``, ``category``, ...) ride along as
    extra keys, read with :meth:`value`.
    """

    key: str | None = None
    id: str | int | None = None
    id_from: Literal["data", "prompt"] | None = None  # "prompt": the id is derived from it
    line: int | None = None  # of the prompt in the data
    prompt: str
    messages: list[dict[str, Any]] | None = None  # a conversation of several turns
    method: str
    response: str | None = None
    score: float | None = None
    initial_best: float | None = None
    best_scores: list[float | None] = []  # best in the cache after each iteration
    mean_scores: list[float | None] = []  # mean of each iteration's new samples
    iterations: int = 0
    stop_reason: str | None = None
    timings: ResultTimings | None = None
    usage: ResultUsage | None = None
    config: dict[str, Any] = {}  # the TPOConfig the method ran with
    backend: dict[str, Any] = {}  # the models, without credentials
    finished_at: str | None = None  # ISO 8601, UTC
    server_requests: dict[str, dict[str, int]] | None = None  # with several servers

    def value(self, name: str) -> Any:
        """The line's field ``name`` (declared or one of the data's), None when absent."""
        return getattr(self, name, None)

    def present(self) -> dict[str, Any]:
        """The keys the line has, with their values (no defaults filled in)."""
        return self.model_dump(exclude_unset=True)


def check_line(where: str, value: Mapping[str, Any]) -> ResultLine:
    """``value`` as a :class:`ResultLine`; a ResultsError naming ``where`` and the first
    field that is wrong."""
    try:
        return ResultLine.model_validate(dict(value))
    except ValidationError as exc:
        error = exc.errors()[0]
        name = ".".join(str(part) for part in error["loc"]) or "(line)"
        got = "" if error["type"] == "missing" else f", got {error['input']!r}"
        raise ResultsError(f"{where}: field '{name}': {error['msg']}{got}") from None


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


def data_id(line: ResultLine) -> str | int | None:
    """The id the data gave a result line's prompt, or None (the line's id was derived)."""
    return None if line.id_from == "prompt" else line.id


def line_text(line: ResultLine) -> str:
    """What identifies a result line's prompt without an id: its ``prompt``, or for a
    conversation of several turns the whole of its ``messages``."""
    if line.messages:
        return conversation_text(line.messages)
    return line.prompt


def line_key(line: ResultLine) -> str:
    """The key of a result line, from its ``method``, ``id`` and prompt (or messages)."""
    return result_key(line.method, data_id(line), line_text(line))


@dataclass
class ResultsFile:
    """The complete lines of a results file, and where its complete part ends."""

    lines: list[ResultLine] = field(default_factory=list)
    complete_bytes: int = 0  # the file's length without a trailing partial line
    partial: bool = False  # the last line had no newline and was not valid JSON


def read_results(path: Path) -> ResultsFile:
    """Parse every complete line of ``path`` (missing file: empty).

    A last line with no newline is kept when it is a whole JSON object, else reported as
    ``partial``. Any other line that is not a JSON object, and any line that is not a
    :class:`ResultLine`, raises a ResultsError naming the file, line number and field.
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
            result.lines.append(check_line(f"{path}: line {number}", _parse(path, number, raw)))
    if tail.strip():
        number = len(raw_lines) + 1
        try:
            value = _parse(path, number, tail)
        except ResultsError:  # being written, or cut by a crash: not a line yet
            result.partial = True
            result.complete_bytes = len(data) - len(tail)
        else:
            result.lines.append(check_line(f"{path}: line {number}", value))
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

    def write(self, line: Mapping[str, Any]) -> None:
        """Append ``line`` as one JSON line in one write, then fsync; a line that is not a
        :class:`ResultLine` is refused (a ResultsError) before anything is written. The
        JSON is ``line`` as given: its keys keep their order."""
        check_line(f"{self.path}: new line", line)
        self._write_all((json.dumps(dict(line), ensure_ascii=False) + "\n").encode("utf-8"))

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
