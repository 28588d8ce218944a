"""Human review that forgives: accept and stop in any case and shape, unreadable answers
asked again, no silent pause without a checkpointer, and instructions in the pause."""

from __future__ import annotations

from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.types import Command

from langgraph_tpo import ConfigError, TPOConfig, create_tpo_graph
from langgraph_tpo.fakes import FakeNPolicy

REVIEW = TPOConfig(num_samples=2, max_iterations=1, review_gradient=True)
THREAD = {"configurable": {"thread_id": "review"}}


def length_reward(query: str, response: str) -> float:
    return float(len(response))


def paused_graph() -> tuple[FakeNPolicy, Any]:
    policy = FakeNPolicy()
    graph = create_tpo_graph(policy, length_reward, REVIEW, checkpointer=InMemorySaver())
    out = graph.invoke({"query": "q"}, THREAD)
    assert out["__interrupt__"]
    return policy, graph


@pytest.mark.parametrize(
    "answer", ["accept", "Accept", "ACCEPT", "  accept \n", True, {"action": "accept"},
               {"action": " Accept "}],
)  # fmt: skip
def test_accept_in_any_case_and_shape_keeps_the_suggestions(answer: Any) -> None:
    policy, graph = paused_graph()
    out = graph.invoke(Command(resume=answer), THREAD)
    assert out["stop_reason"] == "max_iterations"
    step = out["trajectory"][-1]
    assert step["review"] == "accept" and step["textual_gradient"] == "gradient text 0"
    assert policy.count("update") == 2


@pytest.mark.parametrize("answer", ["stop", "Stop", " STOP ", False, {"action": "STOP"}])
def test_stop_in_any_case_and_shape_ends_the_loop(answer: Any) -> None:
    policy, graph = paused_graph()
    out = graph.invoke(Command(resume=answer), THREAD)
    assert out["stop_reason"] == "human_stop" and policy.count("update") == 0


@pytest.mark.parametrize(
    "answer",
    ["  Use bullet points. ", {"action": "Edit", "textual_gradient": "Use bullet points."}],
)
def test_replacement_text_or_an_edit_action_replaces_the_suggestions(answer: Any) -> None:
    policy, graph = paused_graph()
    out = graph.invoke(Command(resume=answer), THREAD)
    assert out["trajectory"][-1]["textual_gradient"] == "Use bullet points."
    update = [c for c in policy.calls if c["kind"] == "update"][-1]
    assert any("Use bullet points." in str(m.content) for m in update["messages"])


@pytest.mark.parametrize(
    "answer,problem",
    [
        ("", "the reply is empty"),
        (" \n\t ", "the reply is empty"),
        ({"action": "maybe"}, "cannot read the review answer"),
        ({"action": "edit", "textual_gradient": "  "}, "needs a non-empty 'textual_gradient'"),
        (42, "cannot read the review answer"),
    ],
)
def test_an_unreadable_answer_is_asked_again(answer: Any, problem: str) -> None:
    policy, graph = paused_graph()
    out = graph.invoke(Command(resume=answer), THREAD)
    (pause,) = out["__interrupt__"]
    assert problem in pause.value["problem"] and pause.value["textual_gradient"]
    assert policy.count("update") == 0  # nothing generated from an unreadable answer
    out = graph.invoke(Command(resume="accept"), THREAD)
    assert out["stop_reason"] == "max_iterations" and policy.count("update") == 2


def test_the_pause_says_what_to_answer() -> None:
    policy = FakeNPolicy()
    graph = create_tpo_graph(policy, length_reward, REVIEW, checkpointer=InMemorySaver())
    (pause,) = graph.invoke({"query": "q"}, THREAD)["__interrupt__"]
    text = pause.value["instructions"]
    assert "'accept'" in text and "'stop'" in text and "textual_gradient" in text


@pytest.mark.parametrize("where", ["config", "context"])
def test_review_without_a_checkpointer_fails_when_the_run_starts(where: str) -> None:
    policy = FakeNPolicy()
    if where == "config":
        graph = create_tpo_graph(policy, length_reward, REVIEW)
        run = lambda: graph.invoke({"query": "q"})  # noqa: E731
    else:
        graph = create_tpo_graph(policy, length_reward, TPOConfig(num_samples=2))
        run = lambda: graph.invoke({"query": "q"}, context={"review_gradient": True})  # noqa: E731
    with pytest.raises(ConfigError, match="review_gradient needs a checkpointer"):
        run()
    assert policy.calls == []  # before any model call


def test_review_in_a_subgraph_uses_the_parents_checkpointer() -> None:
    policy = FakeNPolicy()
    tpo = create_tpo_graph(policy, length_reward, REVIEW)  # no checkpointer of its own
    parent = StateGraph(MessagesState)
    parent.add_node("tpo", tpo)
    parent.add_edge(START, "tpo")
    parent.add_edge("tpo", END)
    app = parent.compile(checkpointer=InMemorySaver())
    out = app.invoke({"messages": [("human", "q")]}, THREAD)
    (pause,) = out["__interrupt__"]
    assert pause.value["event"] == "review_gradient"
    out = app.invoke(Command(resume="Accept"), THREAD)
    assert out["messages"][-1].response_metadata["tpo"]["stop_reason"] == "max_iterations"
    assert policy.count("update") == 2
