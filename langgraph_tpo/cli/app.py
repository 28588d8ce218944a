"""``tpo``: the command line (``run``, ``eval``, ``report``, ``serve``, ``prompts``).

Each command's module is imported only when that command runs (or shows its help), so
``tpo --help`` answers without importing LangGraph, LangChain or the model backends.
Usage errors (an unknown command or flag, a bad flag value, a missing argument) print one
``error:`` line and exit 2; every other error prints one line and exits 1.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

# name: (module, function, summary for `tpo --help`: the start of the function's docstring,
# which is the command's own help; kept here so the listing needs no import)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": (
        "langgraph_tpo.cli.run",
        "run",
        "Optimize one response: sample N, score, then up to D rounds of critique and "
        "rewrite; print the best response, its score and a table per iteration.",
    ),
    "eval": (
        "langgraph_tpo.cli.evaluate",
        "eval_command",
        "Run TPO (or --compare several methods) over a dataset, appending one JSON line per "
        "finished prompt to --out.",
    ),
    "report": (
        "langgraph_tpo.cli.report",
        "report_command",
        "Plot the reward curve (mean best-so-far score per iteration, one line per method) "
        "into DIR/reward_curve.png and summarize final score, gain and win rate over the "
        "first iteration, tokens and wall time per prompt into DIR/summary.md.",
    ),
    "serve": (
        "langgraph_tpo.cli.serve",
        "serve",
        "Serve TPO behind the OpenAI Chat Completions API: POST /v1/chat/completions "
        "(streaming too) and GET /v1/models, on uvicorn.",
    ),
    "prompts": (
        "langgraph_tpo.cli.prompts_cmd",
        "prompts_app",
        "Prompt sets: `tpo prompts show NAME` prints a built-in one in the format --prompts "
        "reads, to start your own from.",
    ),
}


def help_text(command: Callable[..., Any]) -> str:
    """A command's docstring as its help: paragraphs kept, lines within each joined (the
    help formatter would otherwise keep the docstring's line breaks)."""
    doc = command.info.help if isinstance(command, typer.Typer) else command.__doc__
    paragraphs = inspect.cleandoc(str(doc or "")).split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


def command_function(name: str) -> Callable[..., Any]:
    """The function behind ``tpo NAME`` (imports its module)."""
    module, function, _ = COMMANDS[name]
    return getattr(importlib.import_module(module), function)


def load_command(name: str) -> TyperCommand:
    """The command of ``tpo NAME``, built by typer from its function."""
    function = command_function(name)
    if isinstance(function, typer.Typer):  # a group of subcommands (``tpo prompts show``)
        return typer.main.get_group(function)  # type: ignore[return-value]
    single = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    single.command(name, help=help_text(function))(function)
    return typer.main.get_command(single)  # type: ignore[return-value]


class _Listed(TyperCommand):
    """A command's name and summary for ``tpo --help``, without importing its module."""


class LazyCommands(TyperGroup):
    """The ``tpo`` group: commands loaded on use; usage errors as one line."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in COMMANDS:
            return None
        return _Listed(cmd_name, help=COMMANDS[cmd_name][2])

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if isinstance(command, _Listed):
            command = load_command(command.name or "")
        return name, command, rest

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except typer.TyperException as exc:  # typer's usage errors (its vendored click's)
            print_usage_error(exc)
            sys.exit(exc.exit_code)
        except typer.Abort:
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def print_usage_error(exc: typer.TyperException) -> None:
    """``error: MESSAGE (see 'tpo run --help')`` on stderr as one line; ``tpo`` alone: help."""
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
        typer.echo(ctx.get_help(), err=True)
        return
    message = " ".join(exc.format_message().split())
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    typer.echo(f"error: {message}{hint}", err=True)


app = typer.Typer(
    cls=LazyCommands,
    help="Test-Time Preference Optimization (TPO) on LangGraph.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

__all__ = ["COMMANDS", "app", "load_command"]


@app.callback()
def main() -> None:
    """Test-Time Preference Optimization (TPO) on LangGraph."""
