"""Public API: config, per-run overrides, input validation, sync/async/batch/stream."""

from __future__ import annotations

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from langgraph_tpo import ConfigError, PolicyError, TPOConfig, create_tpo_graph
from langgraph_tpo.fakes import FakeNPolicy, FakePolicy
from langgraph_tpo.graph import NODE_NAMES

QUERY = "Write a haiku about rain."


def length_reward(query: str, response: str) -> float:
    return float(len(response))


def test_paper_defaults() -> None:
    c = TPOConfig()
    assert (c.num_samples, c.max_iterations, c.temperature, c.top_p, c.max_tokens) == (
        5,
        2,
        0.7,
        0.95,
        2048,
    )
    assert (c.score_threshold, c.patience, c.mode, c.seed, c.max_context_tokens) == (
        None,
        None,
        "tpo",
        None,
        2048,
    )


@pytest.mark.parametrize(
    "field,value",
    [
        ("num_samples", 0),
        ("max_iterations", -1),
        ("mode", "dpo"),
        ("top_p", 0.0),
        ("score_threshold", "high"),
        ("score_threshold", float("nan")),
        ("patience", 0),
        ("temperature", -1.0),
        ("bogus", 1),
    ],
)
def test_bad_config_names_the_field(field: str, value) -> None:
    with pytest.raises(ConfigError, match=field):
        create_tpo_graph(FakePolicy(), length_reward, {field: value})


def test_context_overrides_one_run_only() -> None:
    policy = FakeNPolicy()
    graph = create_tpo_graph(policy, length_reward, TPOConfig(num_samples=4, max_iterations=2))
    out = graph.invoke({"query": QUERY}, context={"num_samples": 2, "max_iterations": 1})
    assert policy.count() == 2 + 1 * (2 + 2) and len(out["trajectory"]) == 2
    policy.calls.clear()
    graph.invoke({"query": QUERY})
    assert policy.count() == 4 + 2 * (2 + 4)


def test_context_can_switch_mode_and_pass_temperature() -> None:
    policy = FakeNPolicy()
    graph = create_tpo_graph(policy, length_reward)
    out = graph.invoke({"query": QUERY}, context={"mode": "bon", "temperature": 0.1, "seed": 3})
    assert out["stop_reason"] == "bon"
    assert policy.calls[0]["kwargs"] == {
        "temperature": 0.1,
        "top_p": 0.95,
        "max_tokens": 2048,
        "seed": 3,
        "n": 5,
    }


def test_context_can_turn_a_threshold_off() -> None:
    graph = create_tpo_graph(FakeNPolicy(), length_reward, {"score_threshold": 1.0})
    out = graph.invoke({"query": QUERY}, context={"score_threshold": None})
    assert out["stop_reason"] == "max_iterations"


def test_bad_context_is_rejected_before_any_model_call() -> None:
    policy = FakeNPolicy()
    graph = create_tpo_graph(policy, length_reward)
    with pytest.raises(ValueError, match="num_samples"):
        graph.invoke({"query": QUERY}, context={"num_samples": 0})
    assert policy.calls == []


def test_policy_must_be_a_chat_model() -> None:
    with pytest.raises(TypeError, match="BaseChatModel"):
        create_tpo_graph(lambda x: x, length_reward)  # type: ignore[arg-type]


def test_policy_failure_is_a_policy_error() -> None:
    class Broken(FakePolicy):
        def _draw(self, kind, messages, n, kwargs):
            raise RuntimeError("server timed out")

    with pytest.raises(PolicyError, match="server timed out"):
        create_tpo_graph(Broken(), length_reward).invoke({"query": QUERY})


async def test_ainvoke_and_abatch() -> None:
    graph = create_tpo_graph(FakeNPolicy(), length_reward, TPOConfig(num_samples=2))
    out = await graph.ainvoke({"query": QUERY})
    assert out["stop_reason"] == "max_iterations"
    outs = await graph.abatch([{"query": "a"}, {"query": "b"}], context={"max_iterations": 1})
    assert [len(o["trajectory"]) for o in outs] == [2, 2]


def test_batch_and_stream_updates_show_each_node() -> None:
    graph = create_tpo_graph(
        FakeNPolicy(), length_reward, TPOConfig(num_samples=2, max_iterations=1)
    )
    assert [o["query"] for o in graph.batch([{"query": "a"}, {"query": "b"}])] == ["a", "b"]
    nodes = [next(iter(chunk)) for chunk in graph.stream({"query": QUERY}, stream_mode="updates")]
    assert nodes == [*NODE_NAMES, "reward_score", "select"]  # one round, then the rescoring


async def test_sync_invoke_inside_a_running_event_loop() -> None:
    graph = create_tpo_graph(FakeNPolicy(), length_reward, TPOConfig(max_iterations=0))
    assert graph.invoke({"query": QUERY})["stop_reason"] == "max_iterations"


def test_langchain_fake_chat_model_works_as_policy() -> None:
    policy = FakeListChatModel(responses=[f"reply {i}" for i in range(50)])
    config = TPOConfig(num_samples=3, extraction="lenient")  # its replies carry no delimiters
    out = create_tpo_graph(policy, length_reward, config).invoke({"query": QUERY})
    assert len(out["candidates"]) == 9 and out["response"].startswith("reply")


def test_graph_is_usable_as_a_node_in_a_parent_graph() -> None:
    from typing import TypedDict

    from langgraph.graph import END, START, StateGraph

    class Parent(TypedDict, total=False):
        query: str
        response: str
        score: float

    tpo = create_tpo_graph(FakeNPolicy(), length_reward, TPOConfig(num_samples=2))
    parent = StateGraph(Parent)
    parent.add_node("tpo", tpo)
    parent.add_edge(START, "tpo")
    parent.add_edge("tpo", END)
    out = parent.compile().invoke({"query": QUERY})
    assert out["response"].startswith("improved answer") and out["score"] > 0
