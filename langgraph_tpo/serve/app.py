"""TPO behind the OpenAI Chat Completions API: a Starlette app.

``POST /v1/chat/completions`` runs the TPO graph on the request's ``messages`` and answers a
``chat.completion`` (or, with ``stream: true``, ``chat.completion.chunk`` server-sent events
with progress as SSE comment lines); ``GET /v1/models`` lists the pipelines offered. The same
app is served by ``tpo serve`` (uvicorn) and by the LangGraph server as a custom route
(``langgraph.json`` -> :mod:`langgraph_tpo.serve.langgraph_app`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import RetryPolicy
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from langgraph_tpo.backends.factory import BackendSettings, build_models
from langgraph_tpo.config import EMBEDDED_DEFAULTS, TPOConfig, make_config, settings_from_env
from langgraph_tpo.context_window import ConversationTooLongError
from langgraph_tpo.errors import (
    BackendUnavailableError,
    ConfigError,
    ContextTooLongError,
    PolicyError,
    RewardError,
    redact,
)
from langgraph_tpo.graph.builder import DEFAULT_RETRY, create_tpo_graph
from langgraph_tpo.prompts import PromptSet, resolve_prompt_set
from langgraph_tpo.reward import BatchReward
from langgraph_tpo.serve.protocol import (
    PIPELINE_DESCRIPTIONS,
    PIPELINES,
    APIError,
    ChatRequest,
    completion,
    completion_chunks,
    parse_request,
)

logger = logging.getLogger("langgraph_tpo.serve")

API_KEY_ENV = "TPO_SERVER_API_KEY"
MAX_CONCURRENCY_ENV = "TPO_SERVER_MAX_CONCURRENCY"
DEFAULT_MAX_CONCURRENCY = 4
KEEPALIVE_S = 15.0
STREAM_MODES = ["updates", "custom", "values"]
SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class ClientDisconnected(Exception):
    """The client went away; its run was cancelled."""


def max_concurrency_from_env() -> int:
    raw = os.environ.get(MAX_CONCURRENCY_ENV)
    if not raw:
        return DEFAULT_MAX_CONCURRENCY
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"{MAX_CONCURRENCY_ENV} must be an integer >= 1, got {raw!r}")
    return value


def default_config(backends: BackendSettings | None) -> dict[str, Any]:
    """The server's defaults when none are given: the embedded CPU job's (N=3, D=1,
    max_tokens=256) on the embedded model, then any ``TPO_<SETTING>`` variable."""
    embedded = backends is not None and backends.is_embedded
    return {**(EMBEDDED_DEFAULTS if embedded else {}), **settings_from_env(TPOConfig)}


class TPOService:
    """The models, the graph, the concurrency limit and the API key of one app."""

    def __init__(
        self,
        policy: BaseChatModel | None,
        reward: BatchReward | None,
        config: TPOConfig | dict[str, Any] | None,
        backends: BackendSettings | None,
        max_concurrency: int,
        api_key: str | None,
        retry: RetryPolicy | None,
        keepalive_s: float,
        prompts: PromptSet | str | None = None,
    ) -> None:
        if (policy is None) != (reward is None):
            raise TypeError("pass both policy and reward, or neither (backends are built)")
        if max_concurrency < 1:
            raise ConfigError(f"max_concurrency must be >= 1, got {max_concurrency}")
        self.max_concurrency = max_concurrency
        self.api_key = api_key or None
        self.retry = retry
        self.keepalive_s = keepalive_s
        self.prompts = resolve_prompt_set(prompts)  # an unknown name fails here, not at a request
        self.active = 0
        self.durations: list[float] = []
        if policy is None and backends is None:
            backends = BackendSettings.from_env()
        self.backends = backends
        self.defaults = make_config(config if config is not None else default_config(backends))
        self._graph: CompiledStateGraph | None = None
        self._lock = asyncio.Lock()
        if policy is not None and reward is not None:
            self._install(policy, reward)

    def _install(self, policy: BaseChatModel, reward: BatchReward) -> None:
        self._graph = create_tpo_graph(
            policy, reward, self.defaults, retry=self.retry, prompts=self.prompts
        )

    @property
    def secrets(self) -> tuple[str | None, ...]:
        return (self.api_key, self.backends.api_key if self.backends else None)

    async def graph(self) -> CompiledStateGraph:
        """The TPO graph; the backends are built (loaded) on first use."""
        if self._graph is None:
            async with self._lock:
                if self._graph is None:
                    assert self.backends is not None
                    try:
                        policy, reward = await asyncio.to_thread(build_models, self.backends)
                    except (BackendUnavailableError, ConfigError) as exc:
                        raise APIError(
                            503,
                            redact(f"backend not available: {exc}", self.secrets),
                            code="backend_unavailable",
                            kind="server_error",
                        ) from None
                    self._install(policy, reward)
        assert self._graph is not None
        return self._graph

    def check_auth(self, request: Request) -> None:
        if self.api_key is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), self.api_key.encode()
        ):
            raise APIError(
                401,
                "invalid or missing API key: send `Authorization: Bearer <key>` with the key "
                f"the server was started with ({API_KEY_ENV})",
                code="invalid_api_key",
            )

    def acquire(self) -> None:
        if self.active >= self.max_concurrency:
            raise APIError(
                429,
                f"server busy: {self.active} runs in progress (max_concurrency "
                f"{self.max_concurrency}); retry later",
                code="rate_limit_exceeded",
                kind="rate_limit_error",
                headers={"retry-after": str(self.retry_after())},
            )
        self.active += 1

    def release(self, started: float) -> None:
        self.active -= 1
        self.durations = [*self.durations[-19:], time.monotonic() - started]

    def retry_after(self) -> int:
        """Seconds until a slot is likely free: the mean duration of recent runs."""
        if not self.durations:
            return 1
        return max(1, min(60, round(sum(self.durations) / len(self.durations))))

    def run_error(self, exc: BaseException) -> APIError:
        """The error answer for a run that failed; keys masked, never a traceback."""
        message = redact(" ".join(str(exc).split()) or type(exc).__name__, self.secrets)
        if isinstance(exc, ContextTooLongError | ConversationTooLongError):
            return APIError(400, message, code="context_length_exceeded")
        if isinstance(exc, ConfigError):
            return APIError(400, message)
        if isinstance(exc, PolicyError | RewardError | BackendUnavailableError):
            backend = (
                "policy"
                if isinstance(exc, PolicyError)
                else "reward"
                if isinstance(exc, RewardError)
                else "backend"
            )
            down = exc.transient or isinstance(exc, BackendUnavailableError)
            return APIError(
                503 if down else 502,
                f"{backend} backend {'unavailable' if down else 'failed'}: {message}",
                code=f"{backend}_unavailable" if down else f"{backend}_error",
                kind="server_error",
            )
        text = "".join(traceback.format_exception(exc))
        logger.error("TPO run failed:\n%s", redact(text, self.secrets))
        return APIError(
            500,
            f"internal error ({type(exc).__name__}); see the server log",
            code="internal_error",
            kind="server_error",
        )


async def run_graph(
    graph: CompiledStateGraph, request: ChatRequest, progress: Callable[[str], None]
) -> dict[str, Any]:
    """Run TPO on the request's conversation; report each node and iteration to ``progress``."""
    final: dict[str, Any] = {}
    async for mode, chunk in graph.astream(
        {"messages": request.messages}, context=request.overrides, stream_mode=STREAM_MODES
    ):
        if mode == "values":
            final = chunk
        elif mode == "updates":
            for node in chunk:
                progress(f"node {node} done")
        elif isinstance(chunk, dict) and chunk.get("event") == "tpo_iteration":
            progress(_iteration_line(chunk))
    return final


def _iteration_line(event: dict[str, Any]) -> str:
    score = event.get("best_score")
    line = (
        f"iteration {event['iteration']} best_score={score:.4g}"
        if score is not None
        else (f"iteration {event['iteration']} no candidates")
    )
    return line + (f" stop_reason={event['stop_reason']}" if event.get("stop_reason") else "")


async def wait_for_disconnect(receive: Receive) -> None:
    """Return when the client closes the connection (the body has been read already)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def until_disconnect(work: Awaitable[Any], receive: Receive) -> Any:
    """``work``'s result; cancels it and raises ClientDisconnected if the client leaves."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(wait_for_disconnect(receive))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            raise ClientDisconnected()
        return task.result()
    finally:
        await cancel(task, watcher)


async def cancel(*tasks: asyncio.Future[Any]) -> None:
    """Cancel the tasks still running and wait until they have stopped."""
    for task in tasks:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def sse(data: Any) -> bytes:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def sse_comment(text: str) -> bytes:
    return "".join(f": {line}\n" for line in text.splitlines() or [""]).encode() + b"\n"


class ChatCompletions:
    """The ``POST /v1/chat/completions`` ASGI endpoint."""

    def __init__(self, service: TPOService) -> None:
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        started = time.monotonic()
        try:
            self.service.check_auth(request)
            chat = parse_request(await _json_body(request), self.service.defaults)
            self.service.acquire()
        except APIError as error:
            await error_response(error)(scope, receive, send)
            return
        try:
            try:
                graph = await self.service.graph()
            except Exception as exc:
                error = exc if isinstance(exc, APIError) else self.service.run_error(exc)
                await error_response(error)(scope, receive, send)
                return
            if chat.stream:
                await self.stream(graph, chat, receive, send)
            else:
                await self.answer(graph, chat, receive, send, scope)
        finally:
            self.service.release(started)
            logger.info(
                "%s model=%s n=%d stream=%s %.1fs",
                chat.id,
                chat.model,
                chat.n,
                chat.stream,
                time.monotonic() - started,
            )

    async def answer(
        self,
        graph: CompiledStateGraph,
        chat: ChatRequest,
        receive: Receive,
        send: Send,
        scope: Scope,
    ) -> None:
        try:
            out = await until_disconnect(run_graph(graph, chat, lambda _: None), receive)
        except ClientDisconnected:
            logger.info("%s client disconnected; run cancelled", chat.id)
            return
        except Exception as exc:
            await error_response(self.service.run_error(exc))(scope, receive, send)
            return
        await JSONResponse(completion(chat, out))(scope, receive, send)

    async def stream(
        self, graph: CompiledStateGraph, chat: ChatRequest, receive: Receive, send: Send
    ) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
        lines: asyncio.Queue[str] = asyncio.Queue()
        lines.put_nowait(
            f"tpo run {chat.id} started: mode={chat.config.mode} "
            f"N={chat.config.num_samples} D={chat.config.max_iterations}"
        )
        run = asyncio.ensure_future(run_graph(graph, chat, lines.put_nowait))
        watcher = asyncio.ensure_future(wait_for_disconnect(receive))
        try:
            if not await self._send_progress(lines, run, watcher, send):
                logger.info("%s client disconnected; run cancelled", chat.id)
                return
            try:
                events = [sse(c) for c in completion_chunks(chat, run.result())]
            except Exception as exc:
                events = [sse(self.service.run_error(exc).body())]
            for event in [*events, b"data: [DONE]\n\n"]:
                await send({"type": "http.response.body", "body": event, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await cancel(run, watcher)

    async def _send_progress(
        self,
        lines: asyncio.Queue[str],
        run: asyncio.Future[Any],
        watcher: asyncio.Future[None],
        send: Send,
    ) -> bool:
        """Send each progress line as it comes (a keep-alive comment when none came for
        ``keepalive_s``) until the run is done; False when the client left first."""
        while True:
            line = asyncio.ensure_future(lines.get())
            done, _ = await asyncio.wait(
                {line, run, watcher},
                timeout=self.service.keepalive_s,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if watcher in done:
                await cancel(line)
                return False
            if line in done:
                await _send_comment(line.result(), send)
                continue
            await cancel(line)
            if run in done:
                while not lines.empty():
                    await _send_comment(lines.get_nowait(), send)
                return True
            await _send_comment("keep-alive", send)


async def _send_comment(text: str, send: Send) -> None:
    await send({"type": "http.response.body", "body": sse_comment(text), "more_body": True})


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise APIError(400, f"the request body is not valid JSON: {exc}") from None


def error_response(error: APIError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


def create_app(
    policy: BaseChatModel | None = None,
    reward: BatchReward | None = None,
    *,
    config: TPOConfig | dict[str, Any] | None = None,
    backends: BackendSettings | None = None,
    max_concurrency: int | None = None,
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
    beyond it requests get 429 with Retry-After. ``prompts`` is the graph's prompt set (a
    built-in name or a :class:`~langgraph_tpo.PromptSet`; default ``paper``); a request's
    ``tpo.prompt_set`` may name a built-in set instead.
    """
    service = TPOService(
        policy,
        reward,
        config,
        backends,
        max_concurrency if max_concurrency is not None else max_concurrency_from_env(),
        api_key if api_key is not None else os.environ.get(API_KEY_ENV),
        retry,
        keepalive_s,
        prompts,
    )

    async def list_models(request: Request) -> JSONResponse:
        try:
            service.check_auth(request)
        except APIError as error:
            return error_response(error)
        return JSONResponse({"object": "list", "data": [_model_card(m) for m in PIPELINES]})

    async def get_model(request: Request) -> JSONResponse:
        try:
            service.check_auth(request)
            name = request.path_params["model"]
            if name not in PIPELINES:
                raise APIError(
                    404, f"model {name!r} not found", param="model", code="model_not_found"
                )
        except APIError as error:
            return error_response(error)
        return JSONResponse(_model_card(name))

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", ChatCompletions(service), methods=["POST"]),
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/v1/models/{model:path}", get_model, methods=["GET"]),
        ]
    )
    app.state.tpo = service
    return app


def _model_card(name: str) -> dict[str, Any]:
    return {
        "id": name,
        "object": "model",
        "created": 0,
        "owned_by": "langgraph-tpo",
        "description": PIPELINE_DESCRIPTIONS[name],
    }
