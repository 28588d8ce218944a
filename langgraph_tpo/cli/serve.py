"""``tpo serve``: TPO behind the OpenAI Chat Completions API, on uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from langgraph_tpo.assembly import assemble
from langgraph_tpo.cli import options as o
from langgraph_tpo.cli.console import exit_on_error, note, stderr_console
from langgraph_tpo.cli.models import describe_backends
from langgraph_tpo.serve.app import (
    API_KEY_ENV,
    DEFAULT_MAX_QUEUE,
    DEFAULT_QUEUE_TIMEOUT_S,
    MAX_CONCURRENCY_ENV,
    MAX_QUEUE_ENV,
    QUEUE_TIMEOUT_ENV,
    create_app,
)

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
            help="TPO runs at a time; requests beyond it wait in the queue (--max-queue).",
            rich_help_panel=SERVER,
        ),
    ] = 4,
    max_queue: Annotated[
        int,
        typer.Option(
            "--max-queue",
            min=0,
            envvar=MAX_QUEUE_ENV,
            show_envvar=True,
            help="Requests that may wait for a run slot; one more gets HTTP 429 with "
            "Retry-After at once (0: no queue).",
            rich_help_panel=SERVER,
        ),
    ] = DEFAULT_MAX_QUEUE,
    queue_timeout: Annotated[
        float,
        typer.Option(
            "--queue-timeout",
            min=0.001,
            envvar=QUEUE_TIMEOUT_ENV,
            show_envvar=True,
            help="Seconds a queued request waits for a slot before it gets HTTP 429.",
            rich_help_panel=SERVER,
        ),
    ] = DEFAULT_QUEUE_TIMEOUT_S,
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
            max_queue=max_queue,
            queue_timeout=queue_timeout,
            retry=settings.retry,
            prompts=prompts,
        )
    import uvicorn

    note(
        console,
        f"TPO Chat Completions API on http://{host}:{port}/v1 "
        f"(backends {describe_backends(backends)}; defaults N={config.num_samples} "
        f"D={config.max_iterations} mode={config.mode} prompts={prompts.name}; "
        f"max_concurrency {max_concurrency}, queue {max_queue} for {queue_timeout:g}s; "
        f"auth {'on' if app.state.tpo.api_key else f'off (set {API_KEY_ENV})'})",
    )
    uvicorn.run(app, host=host, port=port, log_level="info")
