"""The serving class of the Chat Completions app: it owns the service state (the lazily built
models and graph, the run slots and their queue, the API key) and turns a request into a
response, mapping every failure to an OpenAI error object.

A streamed answer is an async generator of server-sent events that ``sse-starlette``'s
:class:`~sse_starlette.EventSourceResponse` sends (with its keep-alive pings and its
disconnect handling: when the client leaves, the generator, and the run in it, is cancelled).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import time
import traceback
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

from langchain_core.language_models import BaseChatModel
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import RetryPolicy
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from langgraph_tpo.assembly import (
    NodeFinished,
    Reported,
    RunEvent,
    RunFinished,
    assemble,
    default_config,
    run_events,
)
from langgraph_tpo.backends.factory import BackendSettings
from langgraph_tpo.config import TPOConfig, make_config
from langgraph_tpo.context_window import ConversationTooLongError
from langgraph_tpo.errors import (
    BackendUnavailableError,
    ConfigError,
    ContextTooLongError,
    PolicyError,
    RewardError,
    redact,
)
from langgraph_tpo.prompts import PromptSet, resolve_prompt_set
from langgraph_tpo.reward import BatchReward
from langgraph_tpo.serve.protocol import (
    PIPELINES,
    APIError,
    ChatCompletionRequest,
    completion,
    completion_chunks,
    model_card,
    parse_request,
)

logger = logging.getLogger("langgraph_tpo.serve")

API_KEY_ENV = "TPO_SERVER_API_KEY"
T = TypeVar("T")


class ClientDisconnected(Exception):
    """The client went away; its run was cancelled."""


class RunSlots:
    """At most ``limit`` runs at once; up to ``queue_size`` more requests wait (first come,
    first served) for a slot, each at most ``max_wait_s`` seconds. A request that finds the
    queue full, or waits too long, gets 429 with ``Retry-After``."""

    def __init__(self, limit: int, queue_size: int, max_wait_s: float) -> None:
        if limit < 1:
            raise ConfigError(f"max_concurrency must be >= 1, got {limit}")
        if queue_size < 0:
            raise ConfigError(f"max_queue must be >= 0, got {queue_size}")
        if not max_wait_s > 0:
            raise ConfigError(f"queue_timeout must be > 0 seconds, got {max_wait_s}")
        self.limit, self.queue_size, self.max_wait_s = limit, queue_size, max_wait_s
        self.active = 0
        self.waiting = 0
        self.durations: list[float] = []
        self._free: asyncio.Semaphore | None = None

    def _semaphore(self) -> asyncio.Semaphore:
        if self._free is None:  # made on the serving event loop
            self._free = asyncio.Semaphore(self.limit)
        return self._free

    async def acquire(self) -> None:
        """Take a slot, waiting in the queue when all are taken; APIError 429 when the
        queue is full or the wait passes ``max_wait_s``."""
        free = self._semaphore()
        if free.locked():
            if self.waiting >= self.queue_size:
                raise self.busy(f"{self.waiting} requests already waiting (max_queue "
                                f"{self.queue_size})")  # fmt: skip
            self.waiting += 1
            try:
                async with asyncio.timeout(self.max_wait_s):
                    await free.acquire()
            except TimeoutError:
                raise self.busy(f"waited {self.max_wait_s:g} s for a slot") from None
            finally:
                self.waiting -= 1
        else:
            await free.acquire()
        self.active += 1

    def release(self, started: float) -> None:
        """Free a slot; ``started`` (monotonic) times the run for ``Retry-After``."""
        self.active -= 1
        self.durations = [*self.durations[-19:], time.monotonic() - started]
        self._semaphore().release()

    def busy(self, why: str) -> APIError:
        return APIError(
            429,
            f"server busy: {self.active} runs in progress (max_concurrency {self.limit}), "
            f"{why}; retry later",
            code="rate_limit_exceeded",
            kind="rate_limit_error",
            headers={"retry-after": str(self.retry_after())},
        )

    def retry_after(self) -> int:
        """Seconds until a slot is likely free: the mean duration of recent runs."""
        if not self.durations:
            return 1
        return max(1, min(60, round(sum(self.durations) / len(self.durations))))


class TPOServing:
    """The Chat Completions service of one app: models, graph, run slots, API key."""

    def __init__(
        self,
        policy: BaseChatModel | None,
        reward: BatchReward | None,
        config: TPOConfig | dict[str, Any] | None,
        backends: BackendSettings | None,
        slots: RunSlots,
        api_key: str | None,
        retry: RetryPolicy | None,
        keepalive_s: float,
        prompts: PromptSet | str | None = None,
    ) -> None:
        if (policy is None) != (reward is None):
            raise TypeError("pass both policy and reward, or neither (backends are built)")
        self.slots = slots
        self.api_key = api_key or None
        self.retry = retry
        self.keepalive_s = keepalive_s
        self.prompts = resolve_prompt_set(prompts)  # an unknown name fails here, not at a request
        if policy is None and backends is None:
            backends = BackendSettings.from_env()
        self.backends = backends
        self.defaults = make_config(config if config is not None else default_config(backends))
        self._graph: CompiledStateGraph | None = None
        self._lock = asyncio.Lock()
        if policy is not None and reward is not None:
            self._install(policy, reward)

    @property
    def active(self) -> int:
        """Runs in progress."""
        return self.slots.active

    @property
    def max_concurrency(self) -> int:
        return self.slots.limit

    def _install(self, policy: BaseChatModel, reward: BatchReward) -> None:
        run = assemble(
            self.defaults,
            models=(policy, reward),
            retry=self.retry,
            prompts=self.prompts,
        )
        self._graph = run.graph

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
                        run = await asyncio.to_thread(
                            assemble,
                            self.defaults,
                            self.backends,
                            retry=self.retry,
                            prompts=self.prompts,
                        )
                    except (BackendUnavailableError, ConfigError) as exc:
                        raise APIError(
                            503,
                            redact(f"backend not available: {exc}", self.secrets),
                            code="backend_unavailable",
                            kind="server_error",
                        ) from None
                    self._graph = run.graph
        assert self._graph is not None
        return self._graph

    def check_auth(self, request: Request) -> None:
        """APIError 401 unless the request carries the server's key (when it has one)."""
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

    def run_error(self, exc: BaseException) -> APIError:
        """The error answer for a run that failed; keys masked, never a traceback."""
        if isinstance(exc, APIError):
            return exc
        message = redact(" ".join(str(exc).split()) or type(exc).__name__, self.secrets)
        if isinstance(exc, ContextTooLongError | ConversationTooLongError):
            return APIError(400, message, code="context_length_exceeded")
        if isinstance(exc, ConfigError):
            return APIError(400, message)
        if isinstance(exc, PolicyError | RewardError | BackendUnavailableError):
            return _backend_error(exc, message)
        text = "".join(traceback.format_exception(exc))
        logger.error("TPO run failed:\n%s", redact(text, self.secrets))
        return APIError(
            500,
            f"internal error ({type(exc).__name__}); see the server log",
            code="internal_error",
            kind="server_error",
        )

    # --- endpoints ------------------------------------------------------------------------

    async def list_models(self, request: Request) -> Response:
        """``GET /v1/models``: the pipelines offered."""
        try:
            self.check_auth(request)
        except APIError as error:
            return error_response(error)
        return JSONResponse({"object": "list", "data": [model_card(m) for m in PIPELINES]})

    async def get_model(self, request: Request) -> Response:
        """``GET /v1/models/{model}``."""
        try:
            self.check_auth(request)
            name = request.path_params["model"]
            if name not in PIPELINES:
                raise APIError(
                    404, f"model {name!r} not found", param="model", code="model_not_found"
                )
        except APIError as error:
            return error_response(error)
        return JSONResponse(model_card(name))

    async def chat_completion(self, request: Request) -> ASGIApp:
        """``POST /v1/chat/completions``: check, wait for a slot, run (or stream) TPO."""
        try:
            self.check_auth(request)
            chat = parse_request(await _json_body(request), self.defaults)
            await until_disconnect(self.slots.acquire(), request.receive)
        except APIError as error:
            return error_response(error)
        except ClientDisconnected:
            return Response(status_code=499)  # left while queued: nobody is listening
        started = time.monotonic()  # the run's time (Retry-After), not the queue's
        release = _once(lambda: self._finish(chat, started))
        streaming: ASGIApp | None = None
        try:
            graph = await self.graph()
            if chat.stream:
                streaming = _releasing(self.event_source(graph, chat, release), release)
                return streaming
            return await self.answer(graph, chat, request.receive)
        except Exception as exc:
            return error_response(self.run_error(exc))
        finally:
            if streaming is None:  # else the stream frees the slot when it ends
                release()

    def event_source(
        self, graph: CompiledStateGraph, chat: ChatCompletionRequest, release: Any
    ) -> EventSourceResponse:
        """The SSE response of a streamed run: :meth:`stream`'s events, a ``: keep-alive``
        comment every ``keepalive_s``."""
        return EventSourceResponse(
            self.stream(graph, chat, release),
            ping=self.keepalive_s,
            ping_message_factory=lambda: ServerSentEvent(comment="keep-alive"),
            sep="\n",
            headers={"cache-control": "no-cache"},
        )

    def _finish(self, chat: ChatCompletionRequest, started: float) -> None:
        self.slots.release(started)
        logger.info(
            "%s model=%s n=%d stream=%s stop=%d %.1fs",
            chat.id,
            chat.model,
            chat.n,
            chat.stream,
            len(chat.stop),
            time.monotonic() - started,
        )

    async def answer(
        self, graph: CompiledStateGraph, chat: ChatCompletionRequest, receive: Receive
    ) -> Response:
        """The ``chat.completion`` of a whole run; the run is cancelled if the client leaves."""
        try:
            out = await until_disconnect(_final_state(graph, chat), receive)
        except ClientDisconnected:
            logger.info("%s client disconnected; run cancelled", chat.id)
            return Response(status_code=499)
        return JSONResponse(completion(chat, out))

    async def stream(
        self, graph: CompiledStateGraph, chat: ChatCompletionRequest, release: Any
    ) -> AsyncIterator[ServerSentEvent]:
        """The events of a streamed run: progress comments while it runs, then the answer's
        chunks (or an error object) and ``[DONE]``. Frees the run's slot when it ends."""
        try:
            yield ServerSentEvent(
                comment=f"tpo run {chat.id} started: mode={chat.config.mode} "
                f"N={chat.config.num_samples} D={chat.config.max_iterations}"
            )
            out: dict[str, Any] = {}
            try:
                events = run_events(graph, chat.graph_input(), context=chat.overrides)
                async for event in in_own_task(events):
                    if isinstance(event, RunFinished):
                        out = event.state
                    for line in progress_lines(event):
                        yield ServerSentEvent(comment=line)
                bodies = completion_chunks(chat, out)
            except Exception as exc:
                bodies = [self.run_error(exc).body()]
            for body in bodies:
                yield ServerSentEvent(data=json.dumps(body, ensure_ascii=False))
            yield ServerSentEvent(data="[DONE]")
        except asyncio.CancelledError:
            logger.info("%s client disconnected; run cancelled", chat.id)
            raise
        finally:
            release()


async def in_own_task(source: AsyncIterator[T]) -> AsyncIterator[T]:
    """``source``'s items, drawn by a task of its own. When the consumer is cancelled
    (sse-starlette cancels the stream's anyio task group when the client leaves) the task
    gets a plain ``Task.cancel()``, so the graph run's own clean-up (cancelling the model
    call in flight) is not cut short by the cancel scope's repeated cancellation."""
    queue: asyncio.Queue[tuple[bool, Any]] = asyncio.Queue()

    async def pump() -> None:
        try:
            async for item in source:
                queue.put_nowait((False, item))
        except Exception as exc:  # handed to the consumer
            queue.put_nowait((True, exc))
        else:
            queue.put_nowait((True, None))

    task = asyncio.ensure_future(pump())
    try:
        while True:
            done, value = await queue.get()
            if done:
                if value is not None:
                    raise value
                return
            yield value
    finally:
        task.cancel()


def _backend_error(exc: Exception, message: str) -> APIError:
    backend = (
        "policy"
        if isinstance(exc, PolicyError)
        else "reward"
        if isinstance(exc, RewardError)
        else "backend"
    )
    down = getattr(exc, "transient", False) or isinstance(exc, BackendUnavailableError)
    return APIError(
        503 if down else 502,
        f"{backend} backend {'unavailable' if down else 'failed'}: {message}",
        code=f"{backend}_unavailable" if down else f"{backend}_error",
        kind="server_error",
    )


async def _final_state(graph: CompiledStateGraph, chat: ChatCompletionRequest) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async for item in graph.astream(
        chat.graph_input(), context=chat.overrides, stream_mode="values"
    ):
        out = item
    return out


def progress_lines(event: RunEvent) -> list[str]:
    """The progress comments of one run event: a line per finished node, one per iteration
    (the ``tpo_iteration`` event)."""
    if isinstance(event, NodeFinished):
        return [f"node {event.node} done"]
    report = event.event if isinstance(event, Reported) else None
    if isinstance(report, dict) and report.get("event") == "tpo_iteration":
        return [_iteration_line(report)]
    return []


def _iteration_line(event: dict[str, Any]) -> str:
    score = event.get("best_score")
    line = (
        f"iteration {event['iteration']} best_score={score:.4g}"
        if score is not None
        else f"iteration {event['iteration']} no candidates"
    )
    return line + (f" stop_reason={event['stop_reason']}" if event.get("stop_reason") else "")


async def until_disconnect(work: Awaitable[T], receive: Receive) -> T:
    """``work``'s result; cancels it and raises ClientDisconnected if the client leaves
    first (the request body has been read already)."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_wait_for_disconnect(receive))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            raise ClientDisconnected()
        return task.result()
    finally:
        await _cancel(task, watcher)


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _cancel(*tasks: asyncio.Future[Any]) -> None:
    for task in tasks:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _once(action: Any) -> Any:
    """``action`` as a function that runs it on its first call only."""
    done = False

    def run() -> None:
        nonlocal done
        if not done:
            done = True
            action()

    return run


def _releasing(response: Response, release: Any) -> ASGIApp:
    """``response`` as an ASGI app that calls ``release`` when it is over, however it ends
    (the stream's generator may never start if the client leaves at once)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await response(scope, receive, send)
        finally:
            release()

    return app


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise APIError(400, f"the request body is not valid JSON: {exc}") from None


def error_response(error: APIError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)
