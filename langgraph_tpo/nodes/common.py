"""What every node shares: its dependencies, the run's config, timing, and the sync bridge."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable, RunnableConfig
from langgraph.runtime import get_runtime
from langgraph.types import Overwrite

from langgraph_tpo.config import TPOConfig
from langgraph_tpo.degeneration import is_degenerate
from langgraph_tpo.graph.state import Brief, Candidate, TPOState
from langgraph_tpo.prompts import PAPER, PromptSet, builtin_prompt_set
from langgraph_tpo.reward import BatchReward, Conversation
from langgraph_tpo.truncation import Tokenizer

Update = dict[str, Any]
NodeFn = Callable[[TPOState], Awaitable[Update]]
T = TypeVar("T")


@dataclass(frozen=True)
class NodeDeps:
    """Bound at graph creation: the models and the default config."""

    policy: BaseChatModel
    reward: BatchReward
    defaults: TPOConfig
    tokenizer: Tokenizer | None = None
    prompts: PromptSet = PAPER


def run_config(deps: NodeDeps) -> TPOConfig:
    """The graph's defaults with this run's context overrides applied."""
    try:
        context = get_runtime().context
    except RuntimeError:  # called outside a graph run (e.g. a unit test of one node)
        context = None
    return deps.defaults.with_overrides(context)


def prompts_for(deps: NodeDeps, config: TPOConfig) -> PromptSet:
    """The run's prompt set: the graph's, or the built-in one the context names."""
    name = config.prompt_set
    if name is None or name == deps.prompts.name:
        return deps.prompts
    return builtin_prompt_set(name)


def conversation_text(conversation: Conversation) -> str:
    """The conversation as critique prompts quote it: the bare query for a single turn."""
    if len(conversation) == 1:
        return conversation[0]["content"]
    return "\n\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in conversation)


def rejection(prompts: PromptSet, text: str, drop_loops: bool) -> str | None:
    """Why a new response is not worth scoring: ``scaffolding`` (only the prompt set's own
    text echoed back), ``degenerate`` (a loop, when ``drop_loops``), or None (keep it)."""
    if prompts.is_scaffolding(text):
        return "scaffolding"
    if drop_loops and is_degenerate(text):
        return "degenerate"
    return None


def brief(candidate: Candidate | None) -> Brief | None:
    if candidate is None:
        return None
    return Brief(text=candidate["text"], score=candidate["score"])


def new_iteration_record(state: TPOState | None = None) -> Update:
    """The channels of the iteration in progress, emptied (``Overwrite`` past the reducers):
    ``select`` returns this once it has logged an iteration.

    Given ``state``, only the channels that hold something are emptied: every write costs
    the graph a channel update, and most of the record is empty already.
    """
    empty: Update = {
        "iteration_timings": {},
        "iteration_usage": {},
        "extraction_counts": {},
        "new_scores": [],
        "dropped": 0,
        "reward_requests": 0,
        "review_decision": None,
    }
    return {
        key: Overwrite(value) if isinstance(value, dict) else value
        for key, value in empty.items()
        if state is None or state.get(key)
    }


def timed(name: str, fn: NodeFn, *, starts_run: bool = False) -> NodeFn:
    """Add the node's wall time to ``iteration_timings`` (``starts_run``: replace what a
    previous run on the same thread may have left there)."""

    async def node(state: TPOState) -> Update:
        start = time.perf_counter()
        update = await fn(state)
        seconds = {name: time.perf_counter() - start}
        return {**update, "iteration_timings": Overwrite(seconds) if starts_run else seconds}

    node.__name__ = name
    return node


class AsyncNode(Runnable[Any, Any]):
    """A graph node (or router) from an async function that also runs under the sync API
    (invoke, stream, batch).

    Not traced as a run of its own, as LangGraph does for the functions it wraps: the graph
    already records a run per node, so a nested run would only add callback overhead.
    LangGraph runs a node's runnable in the node's context, so ``get_runtime()`` works
    inside ``afunc`` on both paths.
    """

    def __init__(self, name: str, afunc: Callable[[Any], Awaitable[Any]]) -> None:
        self.name = name
        self.afunc = afunc

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return run_sync(self.afunc(input))

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return await self.afunc(input)


_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def _sync_loop() -> asyncio.AbstractEventLoop:
    """One long-lived event loop (in a daemon thread) for every node run under the sync API.

    A fresh loop per call would break clients that pool connections per loop (ChatOpenAI's
    httpx client fails with "Event loop is closed" on the second node).
    """
    global _loop
    with _loop_lock:
        if _loop is None or _loop.is_closed():
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="tpo-sync-loop", daemon=True).start()
        return _loop


async def _in_context(context: contextvars.Context, coro: Coroutine[Any, Any, T]) -> T:
    return await context.run(asyncio.ensure_future, coro)  # the task runs in ``context``


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a node coroutine from sync code, in the caller's context (LangGraph's config)."""
    context = contextvars.copy_context()
    return asyncio.run_coroutine_threadsafe(_in_context(context, coro), _sync_loop()).result()


def cut_at_stop(text: str, stop: list[str] | None) -> str:
    """``text`` up to (not including) the first occurrence of any ``stop`` string, as an
    OpenAI server ends a reply; unchanged without stop strings."""
    ends = [i for s in stop or () if s and (i := text.find(s)) >= 0]
    return text[: min(ends)] if ends else text


def finished(
    texts: list[str | None], reasons: list[str | None], stop: list[str] | None
) -> tuple[list[str | None], list[str]]:
    """Responses cut at ``stop`` (None stays None), and those of them the policy ended at
    ``max_tokens`` (finish reason ``length``) that no stop string shortened."""
    cut = [None if t is None else cut_at_stop(t, stop) for t in texts]
    at_max = [
        c
        for t, c, r in zip(texts, cut, [*reasons, *[None] * len(texts)], strict=False)
        if c is not None and c == t and r == "length"
    ]
    return cut, at_max
