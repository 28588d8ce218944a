"""``tpo``: run TPO on a prompt (``tpo run``)."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console

from langgraph_tpo.backends.factory import build_policy, build_reward
from langgraph_tpo.cli import options as o
from langgraph_tpo.cli.display import Progress, print_result
from langgraph_tpo.config import TPOConfig
from langgraph_tpo.errors import TPOError
from langgraph_tpo.graph import create_tpo_graph

app = typer.Typer(
    help="Test-Time Preference Optimization (TPO) on LangGraph.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def read_prompt(prompt: str) -> str:
    return sys.stdin.read() if prompt == "-" else prompt


async def run_graph(graph: Any, query: str, config: TPOConfig, progress: Progress) -> dict:
    """Stream the run, updating progress after each node; return the final state."""
    final: dict[str, Any] = {}
    async for mode, chunk in graph.astream({"query": query}, stream_mode=["updates", "values"]):
        if mode == "updates":
            for node, update in chunk.items():
                progress.node_done(node, update or {})
        else:
            final = chunk
    return final


@app.command()
def run(
    prompt: Annotated[
        str, typer.Argument(help="The query to optimize a response for; - reads it from stdin.")
    ],
    policy_url: o.PolicyUrl = None,
    policy_model: o.PolicyModel = None,
    policy_path: o.PolicyPath = None,
    reward_url: o.RewardUrl = None,
    reward_model: o.RewardModel = None,
    reward_path: o.RewardPath = None,
    judge: o.Judge = False,
    config_file: o.ConfigFile = None,
    num_samples: o.NumSamples = None,
    max_iterations: o.MaxIterations = None,
    temperature: o.Temperature = None,
    top_p: o.TopP = None,
    max_tokens: o.MaxTokens = None,
    threshold: o.Threshold = None,
    patience: o.Patience = None,
    mode: o.Mode = None,
    seed: o.Seed = None,
    max_context_tokens: o.MaxContextTokens = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the whole final state as JSON.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the response.")] = False,
) -> None:
    """Optimize one response: sample, score, critique, improve; print the best one."""
    flags = dict(locals())
    console = Console(stderr=as_json or quiet)
    try:
        config, backends = o.resolve(config_file, {**flags, "score_threshold": threshold})
        query = read_prompt(prompt)
        policy = build_policy(backends)
        graph = create_tpo_graph(policy, build_reward(backends, policy), config)
        with Progress(console, config.max_iterations, enabled=not quiet) as progress:
            out = asyncio.run(run_graph(graph, query, config, progress))
    except (TPOError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    if as_json:
        print(json.dumps(out, indent=2, ensure_ascii=False, default=str))
    elif quiet:
        print(out.get("response", ""))
    else:
        print_result(console, out)


@app.callback()
def main() -> None:
    """Test-Time Preference Optimization (TPO) on LangGraph."""
