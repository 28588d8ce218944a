"""TPO behind the OpenAI Chat Completions API: the Starlette app, which only wires routes.

``POST /v1/chat/completions`` runs the TPO graph on the request's ``messages`` and answers a
``chat.completion`` (or, with ``stream: true``, ``chat.completion.chunk`` server-sent events
with progress as SSE comment lines); ``GET /v1/models`` lists the pipelines offered. The
service itself (models, run slots, auth, errors) is :class:`~langgraph_tpo.serve.serving.
TPOServing`; the wire format is :mod:`langgraph_tpo.serve.protocol`. The same app is served by
``tpo serve`` (uvicorn) and by the LangGraph server as a custom route (``langgraph.json`` ->
:mod:`langgraph_tpo.serve.langgraph_app`).
"""

from __future__ import annotations

import os
from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.types import RetryPolicy
from starlette.applications import Starlette
from starlette.routing import Route

from langgraph_tpo.backends.factory import BackendSettings
from langgraph_tpo.config import TPOConfig
from langgraph_tpo.errors import ConfigError
from langgraph_tpo.graph.builder import DEFAULT_RETRY
from langgraph_tpo.prompts import PromptSet
from langgraph_tpo.reward import BatchReward
from langgraph_tpo.serve.serving import API_KEY_ENV, RunSlots, TPOServing

MAX_CONCURRENCY_ENV = "TPO_SERVER_MAX_CONCURRENCY"
MAX_QUEUE_ENV = "TPO_SERVER_MAX_QUEUE"
QUEUE_TIMEOUT_ENV = "TPO_SERVER_QUEUE_TIMEOUT"
DEFAULT_MAX_CONCURRENCY = 4
DEFAULT_MAX_QUEUE = 16
DEFAULT_QUEUE_TIMEOUT_S = 60.0
KEEPALIVE_S = 15.0

__all__ = [
    "API_KEY_ENV",
    "MAX_CONCURRENCY_ENV",
    "MAX_QUEUE_ENV",
    "QUEUE_TIMEOUT_ENV",
    "create_app",
]


def _from_env(name: str, default: float, kind: type, minimum: float) -> Any:
    """``$name`` as ``kind`` (``default`` when unset); a ConfigError below ``minimum``."""
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or not value >= minimum:
        raise ConfigError(f"{name} must be a {kind.__name__} >= {minimum:g}, got {raw!r}")
    return value


def max_concurrency_from_env() -> int:
    return _from_env(MAX_CONCURRENCY_ENV, DEFAULT_MAX_CONCURRENCY, int, 1)


def create_app(
    policy: BaseChatModel | None = None,
    reward: BatchReward | None = None,
    *,
    config: TPOConfig | dict[str, Any] | None = None,
    backends: BackendSettings | None = None,
    max_concurrency: int | None = None,
    max_queue: int | None = None,
    queue_timeout: float | None = None,
    api_key: str | None = None,
    retry: RetryPolicy | None = DEFAULT_RETRY,
    keepalive_s: float = KEEPALIVE_S,
    prompts: PromptSet | str | None = None,
) -> Starlette:
    """The Chat Completions app for ``policy`` and ``reward``, or for the backends that
    ``backends`` (default: the ``TPO_*`` environment) name, built on the first request.

    ``config`` holds the server's default TPO settings (default: the paper's, or N=3 D=1
    max_tokens=256 on the embedded CPU model); requests override them. ``api_key``
    (default ``$TPO_SERVER_API_KEY``) is required as ``Authorization: Bearer`` when set.
    ``max_concurrency`` (default ``$TPO_SERVER_MAX_CONCURRENCY`` or 4) runs at a time;
    beyond it up to ``max_queue`` requests (``$TPO_SERVER_MAX_QUEUE`` or 16; 0: none) wait
    for a slot, each at most ``queue_timeout`` seconds (``$TPO_SERVER_QUEUE_TIMEOUT`` or
    60); a request that finds the queue full or waits longer gets 429 with Retry-After.
    ``keepalive_s`` is the interval of the stream's ``: keep-alive`` comments. ``prompts``
    is the graph's prompt set (a built-in name or a :class:`~langgraph_tpo.PromptSet`;
    default ``paper``); a request's ``tpo.prompt_set`` may name a built-in set instead.
    """
    slots = RunSlots(
        max_concurrency if max_concurrency is not None else max_concurrency_from_env(),
        max_queue if max_queue is not None else _from_env(MAX_QUEUE_ENV, DEFAULT_MAX_QUEUE, int, 0),
        queue_timeout
        if queue_timeout is not None
        else _from_env(QUEUE_TIMEOUT_ENV, DEFAULT_QUEUE_TIMEOUT_S, float, 0),
    )
    serving = TPOServing(
        policy,
        reward,
        config,
        backends,
        slots,
        api_key if api_key is not None else os.environ.get(API_KEY_ENV),
        retry,
        keepalive_s,
        prompts,
    )
    app = Starlette(
        routes=[
            Route("/v1/chat/completions", serving.chat_completion, methods=["POST"]),
            Route("/v1/models", serving.list_models, methods=["GET"]),
            Route("/v1/models/{model:path}", serving.get_model, methods=["GET"]),
        ]
    )
    app.state.tpo = serving
    return app
