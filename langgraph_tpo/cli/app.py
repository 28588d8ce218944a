"""``tpo``: the command line (``run``, ``eval``, ``report``, ``export``, ``serve``,
``prompts``).

Each command's module is imported only when that command runs (or shows its help), so
``tpo --help`` answers without importing LangGraph, LangChain or the model backends.
Usage errors (an unknown command or flag, a bad flag value, a missing argument) print one
``error:`` line and exit 2; every other error prints one line and exits 1.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

# name: (module, function). A command's help is the function's docstring (a group's: its
# Typer's help); its first paragraph is the summary `tpo --help` lists.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("langgraph_tpo.cli.run", "run"),
    "eval": ("langgraph_tpo.cli.evaluate", "eval_command"),
    "report": ("langgraph_tpo.cli.report", "report_command"),
    "export": ("langgraph_tpo.cli.export", "export_command"),
    "serve": ("langgraph_tpo.cli.serve", "serve"),
    "prompts": ("langgraph_tpo.cli.prompts_cmd", "prompts_app"),
}


def help_text(command: Callable[..., Any]) -> str:
    """A command's docstring as its help."""
    doc = command.info.help if isinstance(command, typer.Typer) else command.__doc__
    return _paragraphs(doc)


def _paragraphs(doc: str | None) -> str:
    """Paragraphs kept, lines within each joined (the help formatter would otherwise keep
    the docstring's line breaks)."""
    paragraphs = inspect.cleandoc(str(doc or "")).split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


def command_summary(name: str) -> str:
    """The first paragraph of ``tpo NAME``'s help, read from its module's source so the
    listing imports no command module (imported when there is no source to read)."""
    module, function = COMMANDS[name]
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return help_text(command_function(name)).split("\n\n")[0]
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    return _paragraphs(_source_help(tree, function)).split("\n\n")[0]


def _source_help(tree: ast.Module, name: str) -> str | None:
    """The docstring of the function ``name``, or the ``help=`` of ``name = typer.Typer(...)``."""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return ast.get_docstring(node)
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(target, ast.Name) and target.id == name for target in node.targets)
            and isinstance(node.value, ast.Call)
        ):
            helps = [k.value for k in node.value.keywords if k.arg == "help"]
            return ast.literal_eval(helps[0]) if helps else None
    return None


def command_function(name: str) -> Callable[..., Any]:
    """The function behind ``tpo NAME`` (imports its module)."""
    module, function = COMMANDS[name]
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
        return _Listed(cmd_name, help=command_summary(cmd_name))

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
