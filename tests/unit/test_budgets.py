"""Budgets: ``max_total_tokens`` and ``max_seconds`` stop a run with ``budget`` after the
iteration in flight and return the best response so far."""

from __future__ import annotations

import time

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from langgraph_tpo import ConfigError, TPOConfig, create_tpo_graph
from langgraph_tpo.graph.routing import Spent, stop_reason
from tests.serve.helpers import TokenPolicy

QUERY = "How do I take care of a wooden table?"


def length_reward(query: str, response: str) -> float:
    return float(len(response))


def policy_tokens(policy: TokenPolicy) -> int:
    return sum(p + c for p, c in policy.usage)


def test_token_budget_stops_after_the_iteration_that_reached_it() -> None:
    policy = TokenPolicy()
    first_sample = policy_tokens_of_sampling()
    config = TPOConfig(num_samples=2, max_iterations=5, max_total_tokens=first_sample + 1)
    out = create_tpo_graph(policy, length_reward, config).invoke({"query": QUERY})
    assert out["stop_reason"] == "budget"
    assert [e["iteration"] for e in out["trajectory"]] == [0, 1]  # iteration 1 finished
    assert out["trajectory"][-1]["stop_reason"] == "budget"
    assert out["response"] == max(out["candidates"], key=lambda c: c["score"])["text"]
    assert len(out["candidates"]) == 4  # the updates of the last iteration were scored
    assert policy_tokens(policy) >= config.max_total_tokens


def policy_tokens_of_sampling() -> int:
    policy = TokenPolicy()
    create_tpo_graph(policy, length_reward, TPOConfig(num_samples=2, max_iterations=0)).invoke(
        {"query": QUERY}
    )
    return policy_tokens(policy)


def test_time_budget_returns_the_best_of_the_first_sampling() -> None:
    config = TPOConfig(num_samples=3, max_iterations=4, max_seconds=1e-9)
    out = create_tpo_graph(TokenPolicy(), length_reward, config).invoke({"query": QUERY})
    assert out["stop_reason"] == "budget" and len(out["trajectory"]) == 1
    assert out["response"] and out["score"] == max(c["score"] for c in out["candidates"])


def test_a_budget_can_be_set_for_one_run_through_the_context() -> None:
    graph = create_tpo_graph(TokenPolicy(), length_reward, TPOConfig(num_samples=2))
    out = graph.invoke({"query": QUERY}, context={"max_total_tokens": 1})
    assert out["stop_reason"] == "budget" and len(out["trajectory"]) == 1


def test_a_resumed_run_counts_its_seconds_from_its_first_start() -> None:
    graph = create_tpo_graph(
        TokenPolicy(),
        length_reward,
        TPOConfig(num_samples=2, max_iterations=3, max_seconds=60.0),
        checkpointer=InMemorySaver(),
        interrupt_after=["sample"],
    )
    thread = {"configurable": {"thread_id": "resumed"}}
    graph.invoke({"query": QUERY}, thread)
    started = graph.get_state(thread).values["started_at"]
    assert abs(started - time.time()) < 60
    graph.update_state(thread, {"started_at": started - 120})  # as if killed two minutes ago
    out = graph.invoke(None, thread)
    assert out["stop_reason"] == "budget" and len(out["trajectory"]) == 1


def test_natural_stops_take_precedence_over_the_budget() -> None:
    config = TPOConfig(max_iterations=1, max_total_tokens=10)
    assert stop_reason(config, 1, [1.0, 2.0], Spent(tokens=99, seconds=0.0)) == "max_iterations"
    assert stop_reason(config, 0, [1.0], Spent(tokens=99, seconds=0.0)) == "budget"
    assert stop_reason(config, 0, [1.0], Spent(tokens=9, seconds=1e9)) is None


@pytest.mark.parametrize(
    "field,value", [("max_total_tokens", 0), ("max_seconds", 0.0), ("max_seconds", float("inf"))]
)
def test_a_budget_must_be_positive_and_finite(field: str, value: float) -> None:
    with pytest.raises(ConfigError, match=field):
        TPOConfig(**{field: value})
