"""``tpo serve``: TPO behind the OpenAI Chat Completions API, on uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from langgraph_tpo.assembly import assemble
from langgraph_tpo.cli import options as o
from langgraph_tpo.cli.console import exit_on_error, note, stderr_console
from langgraph_tpo.cli.models import describe_backends
from langgraph_tpo.serve.app import API_KEY_ENV, MAX_CONCURRENCY_ENV, create_app

SERVER = "Server"


@o.settings_options(command="serve")
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
    *,
    settings: o.CommandSettings,
) -> None:
    """Serve TPO behind the OpenAI Chat Completions API: POST /v1/chat/completions
    (streaming too) and GET /v1/models, on uvicorn.

    Point any OpenAI client's base_url at http://HOST:PORT/v1. The TPO flags set the
    server's defaults; each request's temperature, top_p, max_tokens, seed and `tpo` object
    override them. With TPO_SERVER_API_KEY set, requests need
    `Authorization: Bearer <key>`.
    """
    console = stderr_console()
    secrets: list[str | None] = [settings.api_key]
    with exit_on_error(console, secrets):
        config, backends, prompts = settings.load(secrets)
        run = assemble(config, backends, retry=settings.retry, prompts=prompts)
        app = create_app(
            run.policy,
            run.reward,
            config=config,
            backends=backends,
            max_concurrency=max_concurrency,
            retry=settings.retry,
            prompts=prompts,
        )
    import uvicorn

    note(
        console,
        f"TPO Chat Completions API on http://{host}:{port}/v1 "
        f"(backends {describe_backends(backends)}; defaults N={config.num_samples} "
        f"D={config.max_iterations} mode={config.mode} prompts={prompts.name}; "
        f"max_concurrency {max_concurrency}; "
        f"auth {'on' if app.state.tpo.api_key else f'off (set {API_KEY_ENV})'})",
    )
    uvicorn.run(app, host=host, port=port, log_level="info")
