"""``tpo prompts show NAME``: print a built-in prompt set as a file ``--prompts`` reads."""

from __future__ import annotations

from typing import Annotated

import typer

from langgraph_tpo.cli.console import exit_on_error, stderr_console
from langgraph_tpo.prompts import BUILTIN_SETS, builtin_prompt_set

prompts_app = typer.Typer(
    name="prompts",
    help="Prompt sets: 'tpo prompts show NAME' prints a built-in one in the format --prompts "
    "reads, to start your own from.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@prompts_app.command("show")
def show(
    name: Annotated[
        str, typer.Argument(help=f"A built-in prompt set: {', '.join(BUILTIN_SETS)}.")
    ] = "paper",
) -> None:
    """Print a built-in prompt set as YAML, the format --prompts FILE reads.

    Save it, edit it (keep each step's required variables) and pass the file to --prompts.
    """
    with exit_on_error(stderr_console(), []):
        prompt_set = builtin_prompt_set(name)
    print(prompt_set.to_yaml(), end="")
