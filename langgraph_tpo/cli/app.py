"""``tpo``: the command line (``run``, ``eval``, ``report``, ``serve``)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import typer

from langgraph_tpo.cli.evaluate import eval_command
from langgraph_tpo.cli.report import report_command
from langgraph_tpo.cli.run import read_prompt, run
from langgraph_tpo.cli.serve import serve

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def help_text(command: Callable[..., Any]) -> str:
    """A command's docstring as its help: paragraphs kept, lines within each joined (the
    help formatter would otherwise keep the docstring's line breaks)."""
    paragraphs = inspect.cleandoc(command.__doc__ or "").split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


for name, command in (
    ("run", run),
    ("eval", eval_command),
    ("report", report_command),
    ("serve", serve),
):
    app.command(name, help=help_text(command))(command)

__all__ = ["app", "read_prompt"]


@app.callback()
def main() -> None:
    """Test-Time Preference Optimization (TPO) on LangGraph."""
