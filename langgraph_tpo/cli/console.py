"""Consoles and error lines shared by the commands.

Progress and messages go to stderr; results go to stdout. Expected failures (a
:class:`~langgraph_tpo.errors.TPOError`, a ``ValueError``, a connection or file error)
become one red line and exit status 1, never a traceback. Secrets (the API key) are
masked in every message printed through :func:`error_line`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import httpx
import typer
from rich.console import Console
from rich.text import Text

from langgraph_tpo.errors import TPOError, redact

EXPECTED_ERRORS: tuple[type[BaseException], ...] = (TPOError, ValueError, OSError, httpx.HTTPError)


def stderr_console() -> Console:
    """A console for progress and messages (stderr, so stdout stays machine-readable)."""
    return Console(stderr=True)


def expected_errors() -> tuple[type[BaseException], ...]:
    """The exception types reported as one line: ours, values, files, connections."""
    try:
        import openai
    except ImportError:  # pragma: no cover - openai is a dependency
        return EXPECTED_ERRORS
    return (*EXPECTED_ERRORS, openai.APIError)


def describe_error(exc: BaseException) -> str:
    """One line for ``exc``: its message, with the type for errors that are not ours."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, TPOError | ValueError):
        return message
    return f"{type(exc).__name__}: {message}"


def note(console: Console, message: str, style: str | None = None) -> None:
    """Print a plain message line (no markup, no highlighting, no wrapping)."""
    console.print(Text(message, style=style or ""), soft_wrap=True, highlight=False)


def error_line(console: Console, message: str, secrets: Iterable[str | None] = ()) -> None:
    """Print ``error: message`` as one red line (no markup, no wrapping)."""
    console.print(Text(f"error: {redact(message, secrets)}", style="red"), soft_wrap=True)


@contextlib.contextmanager
def exit_on_error(console: Console, secrets: list[str | None]) -> Iterator[None]:
    """Turn expected errors into one red line and exit status 1.

    ``secrets`` is read when an error happens, so callers may add the API key to it
    once they know it.
    """
    try:
        yield
    except expected_errors() as exc:
        error_line(console, describe_error(exc), secrets)
        raise typer.Exit(1) from None
