"""``tpo run PROMPT``: optimize one response and print it."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console

from langgraph_tpo.assembly import NodeFinished, Reported, assemble, run_events
from langgraph_tpo.cli import options as o
from langgraph_tpo.cli.console import exit_on_error, stderr_console
from langgraph_tpo.cli.display import RunProgress, print_result
from langgraph_tpo.cli.models import check_servers
from langgraph_tpo.config import TPOConfig
from langgraph_tpo.errors import ConfigError


def read_prompt(prompt: str) -> str:
    """The prompt, or stdin when it is ``-``; rejects an empty prompt before model work."""
    text = sys.stdin.read() if prompt == "-" else prompt
    if not text.strip():
        raise ConfigError("the prompt is empty" + (" (nothing on stdin)" if prompt == "-" else ""))
    return text


def depth(config: TPOConfig) -> int:
    """D as the progress shows it: best-of-N runs no iterations."""
    return 0 if config.mode == "bon" else config.max_iterations


async def stream_run(graph: Any, query: str, progress: RunProgress) -> dict[str, Any]:
    """Run the graph on ``query``, feeding progress; return the final state."""
    final: dict[str, Any] = {}
    async for event in run_events(graph, {"query": query}):
        if isinstance(event, NodeFinished):
            progress.on_update({event.node: event.values})
        elif isinstance(event, Reported):
            progress.on_event(event.event)
        else:
            final = event.state
    return final


def emit(out: dict[str, Any], as_json: bool, quiet: bool) -> None:
    """Print the final state (``--json``), the response alone (``--quiet``), or both
    the response and the iteration table."""
    if as_json:
        print(json.dumps(out, indent=2, ensure_ascii=False, default=str))
    elif quiet:
        print(out.get("response", ""))
    else:
        print_result(Console(), out)


@o.settings_options(command="run")
def run(
    prompt: Annotated[
        str, typer.Argument(help="The query to optimize a response for; - reads it from stdin.")
    ],
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print the whole final state as JSON on stdout (progress on stderr)."
        ),
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option("--quiet", "-q", help="Print only the response: no progress, no table."),
    ] = False,
    *,
    settings: o.CommandSettings,
) -> None:
    """Optimize one response: sample N, score, then up to D rounds of critique and rewrite;
    print the best response, its score and a table per iteration.

    Progress (running node, iteration k of D, best score, elapsed time) goes to stderr.
    review_gradient has no flag: it needs an interactive resume (use the Python API or
    LangGraph Studio).
    """
    console = stderr_console()
    secrets: list[str | None] = [settings.api_key]
    with exit_on_error(console, secrets):
        config, backends, prompts = settings.load(secrets)
        query = read_prompt(prompt)
        retry = settings.retry
        check_servers(backends, retry)
        graph = assemble(config, backends, retry=retry, prompts=prompts).graph
        with RunProgress(console, depth(config), enabled=not quiet) as progress:
            out = asyncio.run(stream_run(graph, query, progress))
    emit(out, as_json, quiet)
