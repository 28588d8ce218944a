"""The typed state: the iteration's record travels in channels with reducers, ``select``
folds it into a TrajectoryEntry and empties it; the human's decision is a field."""

from __future__ import annotations

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from langgraph_tpo import TPOConfig, create_tpo_graph
from langgraph_tpo.fakes import FakeNPolicy
from langgraph_tpo.graph.state import TPOState, TrajectoryEntry, add_per_key

QUERY = "How do I take care of a wooden table?"
RECORD = (
    "iteration_timings",
    "iteration_usage",
    "extraction_counts",
    "new_scores",
    "dropped",
    "reward_requests",
    "review_decision",
)


def length_reward(query: str, response: str) -> float:
    return float(len(response))


def graph_with_memory(**config: object):
    policy = FakeNPolicy()
    graph = create_tpo_graph(
        policy,
        length_reward,
        TPOConfig(num_samples=2, max_iterations=2, **config),
        checkpointer=InMemorySaver(),
    )
    return policy, graph, {"configurable": {"thread_id": "t"}}


def test_add_per_key_sums_counters() -> None:
    assert add_per_key({"a": 1, "b": 2}, {"b": 3, "c": 4}) == {"a": 1, "b": 5, "c": 4}
    assert add_per_key(None, {"a": 0.5}) == {"a": 0.5}


def test_trajectory_entries_have_exactly_the_declared_keys() -> None:
    """Every entry ``select`` logs carries each required key of TrajectoryEntry and nothing
    undeclared; only the last one carries the optional ``stop_reason``."""
    _, graph, config = graph_with_memory()
    out = graph.invoke({"query": QUERY}, config)
    required = TrajectoryEntry.__required_keys__
    assert [set(e) for e in out["trajectory"]] == [
        required,
        required,
        required | {"stop_reason"},
    ]
    assert [e["iteration"] for e in out["trajectory"]] == [0, 1, 2]
    assert out["trajectory"][-1]["stop_reason"] == out["stop_reason"]


def test_select_empties_the_iteration_record_after_logging_it() -> None:
    _, graph, config = graph_with_memory()
    out = graph.invoke({"query": QUERY}, config)
    last = out["trajectory"][-1]
    # what the record held was logged: the last iteration timed its nodes, called the policy
    assert set(last["timings"]) >= {"textual_loss", "textual_gradient", "update", "select"}
    assert last["usage"]["requests"] >= 3 and len(last["new_scores"]) == 2
    assert last["reward_requests"] == 1
    # and every channel of the record is back to its empty value
    values = graph.get_state(config).values
    emptied = {key: values.get(key) for key in RECORD}
    assert emptied == {
        "iteration_timings": {}, "iteration_usage": {}, "extraction_counts": {},
        "new_scores": [], "dropped": 0, "reward_requests": 0, "review_decision": None,
    }  # fmt: skip
    assert set(values) <= set(TPOState.__annotations__)  # no undeclared channel is written


def test_a_new_query_on_a_paused_thread_starts_a_fresh_record() -> None:
    policy, graph, config = graph_with_memory(review_gradient=True)
    graph.invoke({"query": QUERY}, config)  # paused before update, iteration 1 half done
    paused = graph.get_state(config).values
    assert paused["iteration_usage"]["requests"] == 2  # textual_loss and textual_gradient
    assert set(paused["iteration_timings"]) == {"textual_loss", "textual_gradient"}
    out = graph.invoke({"query": "Another question?"}, config, context={"max_iterations": 0})
    (entry,) = out["trajectory"]
    assert set(entry["timings"]) == {"sample", "reward_score", "select"}
    assert (entry["usage"]["requests"], entry["usage"]["generations"]) == (1, 2)
    assert entry["review"] is None


def test_the_human_decision_is_a_field_that_select_reads() -> None:
    policy, graph, config = graph_with_memory(review_gradient=True)
    graph.invoke({"query": QUERY}, config)
    graph.invoke(Command(resume="accept"), config)  # iteration 1 done; paused in iteration 2
    assert graph.get_state(config).values["review_decision"] is None  # select emptied it
    out = graph.invoke(Command(resume="stop"), config)
    assert [e["review"] for e in out["trajectory"]] == [None, "accept", "stop"]
    assert out["stop_reason"] == out["trajectory"][-1]["stop_reason"] == "human_stop"
    assert policy.count("update") == 2  # the stopped iteration drew nothing


def test_the_loop_nodes_read_views_with_the_states_own_types() -> None:
    from typing import get_type_hints

    from langgraph_tpo.graph.state import CritiqueView, ScoringView, TPOState

    state = get_type_hints(TPOState, include_extras=True)
    for view in (CritiqueView, ScoringView):
        for key, hint in get_type_hints(view, include_extras=True).items():
            assert state[key] == hint, (view.__name__, key)


def test_select_routes_itself_and_the_drawing_shows_both_ways_out() -> None:
    _, graph, config = graph_with_memory()
    edges = {(e.source, e.target) for e in graph.get_graph().edges}
    assert {("select", "textual_loss"), ("select", "__end__")} <= edges
    out = graph.invoke({"query": QUERY}, config)
    assert out["stop_reason"] == "max_iterations" and len(out["trajectory"]) == 3
