"""What create_tpo_graph hands to LangGraph: the durability default and the compile options."""

from __future__ import annotations

import time
from typing import Any

import pytest
from langgraph.cache.memory import InMemoryCache
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore

from langgraph_tpo import TPOConfig, create_tpo_graph
from langgraph_tpo.fakes import FakeBatchReward, FakeNPolicy

SMALL = TPOConfig(num_samples=2, max_iterations=2)
PUT_DELAY_S = 0.05


class SlowSaver(InMemorySaver):
    """Takes a while to write each checkpoint and counts the ones written."""

    def __init__(self) -> None:
        super().__init__()
        self.written = 0

    def put(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        time.sleep(PUT_DELAY_S)
        saved = super().put(config, checkpoint, metadata, new_versions)
        self.written += 1
        return saved


def checkpoints_seen_by_each_policy_call(**invoke_kwargs: Any) -> list[tuple[str, int]]:
    """(prompt kind, checkpoints already written) at every policy call of one run."""
    saver = SlowSaver()
    seen: list[tuple[str, int]] = []

    class Watching(FakeNPolicy):
        def _draw(self, kind: str, messages: Any, n: int, kwargs: Any) -> Any:
            seen.append((kind, saver.written))
            return super()._draw(kind, messages, n, kwargs)

    graph = create_tpo_graph(Watching(), FakeBatchReward(), SMALL, checkpointer=saver)
    out = graph.invoke({"query": "q"}, {"configurable": {"thread_id": "t"}}, **invoke_kwargs)
    assert out["stop_reason"] == "max_iterations"
    return seen


def test_runs_default_to_sync_durability_with_a_checkpointer() -> None:
    default = checkpoints_seen_by_each_policy_call()
    # "sync": every node starts only after the checkpoint of the step before it is written
    assert default == checkpoints_seen_by_each_policy_call(durability="sync")
    # LangGraph's own default writes in the background: the next node starts earlier
    assert default != checkpoints_seen_by_each_policy_call(durability="async")
    # with "exit" nothing is written before the run ends
    assert {written for _, written in checkpoints_seen_by_each_policy_call(durability="exit")} == {
        0
    }
    assert [written for _, written in default] == sorted({w for _, w in default})


def test_the_durability_default_is_a_parameter_and_survives_with_config() -> None:
    graph = create_tpo_graph(
        FakeNPolicy(), FakeBatchReward(), SMALL, checkpointer=InMemorySaver(), durability="exit"
    )
    assert graph.with_config({"tags": ["x"]}).default_durability == "exit"


def test_no_durability_is_passed_without_a_checkpointer(recwarn: pytest.WarningsRecorder) -> None:
    out = create_tpo_graph(FakeNPolicy(), FakeBatchReward(), SMALL).invoke({"query": "q"})
    assert out["stop_reason"] == "max_iterations"
    assert not [w for w in recwarn if "durability" in str(w.message)]


def test_compile_options_reach_the_compiled_graph() -> None:
    store, cache = InMemoryStore(), InMemoryCache()
    graph = create_tpo_graph(
        FakeNPolicy(),
        FakeBatchReward(),
        SMALL,
        checkpointer=InMemorySaver(),
        store=store,
        cache=cache,
        interrupt_before=["update"],
        interrupt_after=["textual_loss"],
        debug=True,
    )
    assert graph.store is store and graph.cache is cache and graph.debug is True
    assert graph.interrupt_before_nodes == ["update"]
    assert graph.interrupt_after_nodes == ["textual_loss"]


def test_interrupts_pause_the_run_where_asked() -> None:
    policy = FakeNPolicy()
    graph = create_tpo_graph(
        policy,
        FakeBatchReward(),
        SMALL,
        checkpointer=InMemorySaver(),
        interrupt_after=["textual_loss"],
    )
    config = {"configurable": {"thread_id": "t"}}
    graph.invoke({"query": "q"}, config)
    assert graph.get_state(config).next == ("textual_gradient",)
    assert policy.count("gradient") == 0
    graph.invoke(None, config)  # resumes up to the next textual_loss
    assert graph.get_state(config).next == ("textual_gradient",)
    assert policy.count("update") == 2 and policy.count("loss") == 2
