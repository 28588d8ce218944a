"""The two workarounds that stay (docs/architecture.md, "Workarounds that stay"): what each
protects, and the LangGraph limits that make them necessary. If LangGraph lifts a limit,
the test pinning it fails: then the workaround can go."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Sequence
from typing import Any, TypedDict

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from langgraph_tpo import TPOConfig, create_tpo_graph
from langgraph_tpo.fakes import FakeBatchReward, FakeNPolicy
from langgraph_tpo.graph.builder import TPOGraph
from langgraph_tpo.reward import RewardPair

SMALL = TPOConfig(num_samples=2, max_iterations=2)


class LoopBoundReward(FakeBatchReward):
    """A reward holding a loop-bound resource, as a pooled async HTTP client does: its
    queue belongs to the first event loop that used it and fails on any other."""

    def __init__(self) -> None:
        super().__init__()
        self.loops: list[asyncio.AbstractEventLoop] = []
        self.threads: set[str] = set()
        self.queue: asyncio.Queue[int] | None = None

    async def ascore_batch(self, pairs: Sequence[RewardPair]) -> list[float]:
        self.loops.append(asyncio.get_running_loop())
        self.threads.add(threading.current_thread().name)
        self.queue = self.queue or asyncio.Queue()
        await self.queue.put(1)
        await asyncio.wait_for(self.queue.get(), timeout=1)  # binds to (and checks) the loop
        return await super().ascore_batch(pairs)


def test_langgraph_cannot_run_an_async_node_under_the_sync_api() -> None:
    """Why ``AsyncNode`` has a sync bridge: LangGraph refuses sync runs of async nodes."""

    class State(TypedDict, total=False):
        x: int

    async def node(state: State) -> State:
        return {"x": 1}

    builder = StateGraph(State)
    builder.add_node("node", node)
    builder.add_edge(START, "node")
    with pytest.raises(TypeError, match="No synchronous function provided"):
        builder.compile().invoke({"x": 0})


def test_sync_runs_keep_one_event_loop_across_nodes_and_runs() -> None:
    """The bridge's one long-lived loop: a client bound to a loop survives every node of
    a sync run and the next sync run (a loop per call would close it under the client)."""
    reward = LoopBoundReward()
    graph = create_tpo_graph(FakeNPolicy(), reward, SMALL)
    for _ in range(2):
        assert graph.invoke({"query": "q"})["stop_reason"] == "max_iterations"
    assert len(reward.loops) == 6 and len(set(reward.loops)) == 1
    assert not reward.loops[0].is_closed() and reward.threads == {"tpo-sync-loop"}


def test_sync_runs_give_the_nodes_the_callers_langgraph_context() -> None:
    """The bridge runs each node in the caller's context: ``get_runtime()`` (the run's
    context) and the stream writer (custom events) work under ``invoke`` and ``stream``."""
    graph = create_tpo_graph(FakeNPolicy(), FakeBatchReward(), SMALL)
    out = graph.invoke({"query": "q"}, context={"max_iterations": 1})
    assert len(out["trajectory"]) == 2  # the context's max_iterations, read by the nodes
    events = list(graph.stream({"query": "q"}, stream_mode="custom"))
    assert len(events) == 3 and all("tpo_iteration" in str(e) for e in events)


async def test_async_runs_use_the_callers_loop_not_the_bridge() -> None:
    reward = LoopBoundReward()
    await create_tpo_graph(FakeNPolicy(), reward, SMALL).ainvoke({"query": "q"})
    assert set(reward.loops) == {asyncio.get_running_loop()}


def test_compile_takes_no_durability_default() -> None:
    """Why ``TPOGraph`` exists: LangGraph's runs default to durability "async", and neither
    ``compile`` nor the graph takes a default of its own (only a private config key)."""
    assert "durability" not in inspect.signature(StateGraph.compile).parameters
    stream = inspect.signature(CompiledStateGraph.stream).parameters["durability"]
    assert stream.default is None


def test_the_tpo_graph_is_still_a_compiled_state_graph_and_copies_keep_the_default() -> None:
    """What the class swap keeps: the object LangGraph built (a ``CompiledStateGraph`` for
    the LangGraph server, subgraph use and ``get_state``), with the run default, through
    ``copy`` (``tpo eval`` attaches its checkpointer that way) and ``with_config``."""
    graph: Any = create_tpo_graph(
        FakeNPolicy(), FakeBatchReward(), SMALL, checkpointer=InMemorySaver()
    )
    assert type(graph) is TPOGraph and isinstance(graph, CompiledStateGraph)
    assert graph.default_durability == "sync"
    copied = graph.copy(update={"checkpointer": InMemorySaver()})
    assert type(copied) is TPOGraph and copied.default_durability == "sync"
    config = {"configurable": {"thread_id": "t"}}
    assert copied.with_config(config).invoke({"query": "q"})["stop_reason"] == "max_iterations"
    assert copied.get_state(config).values["stop_reason"] == "max_iterations"
