"""``tpo serve``: TPO behind the OpenAI Chat Completions API, on uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from langgraph_tpo.cli import options as o
from langgraph_tpo.cli.console import exit_on_error, note, stderr_console
from langgraph_tpo.cli.models import build_models, describe_backends
from langgraph_tpo.serve.app import API_KEY_ENV, MAX_CONCURRENCY_ENV, create_app

SERVER = "Server"


def serve(
    host: Annotated[
        str, typer.Option(help="Address to listen on.", rich_help_panel=SERVER)
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", rich_help_panel=SERVER)] = 8100,
    max_concurrency: Annotated[
        int,
        typer.Option(
            "--max-concurrency",
            min=1,
            envvar=MAX_CONCURRENCY_ENV,
            show_envvar=True,
            help="TPO runs at a time; requests beyond it get HTTP 429 with Retry-After.",
            rich_help_panel=SERVER,
        ),
    ] = 4,
    policy_url: o.PolicyUrl = None,
    policy_model: o.PolicyModel = None,
    policy_path: o.PolicyPath = None,
    reward_url: o.RewardUrl = None,
    reward_model: o.RewardModel = None,
    reward_path: o.RewardPath = None,
    judge: o.Judge = False,
    api_key: o.ApiKey = None,
    retries: o.Retries = None,
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
) -> None:
    """Serve POST /v1/chat/completions and GET /v1/models; the TPO flags set the defaults
    that each request's fields and `tpo` object override."""
    flags = dict(locals())
    console = stderr_console()
    secrets: list[str | None] = [api_key]
    with exit_on_error(console, secrets):
        config, backends = o.resolve(config_file, flags)
        secrets.append(backends.api_key)
        policy, reward = build_models(backends)
        app = create_app(
            policy,
            reward,
            config=config,
            backends=backends,
            max_concurrency=max_concurrency,
            retry=o.retry_policy(retries),
        )
    import uvicorn

    note(
        console,
        f"TPO Chat Completions API on http://{host}:{port}/v1 "
        f"(backends {describe_backends(backends)}; defaults N={config.num_samples} "
        f"D={config.max_iterations} mode={config.mode}; max_concurrency {max_concurrency}; "
        f"auth {'on' if app.state.tpo.api_key else f'off (set {API_KEY_ENV})'})",
    )
    uvicorn.run(app, host=host, port=port, log_level="info")
