"""Rewards that read the data row: the graph's ``row`` input, the missing-field error before
any model call, and the weighted sum of a reward model and a verifier."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from langgraph_tpo import ConfigError, TPOConfig, create_tpo_graph
from langgraph_tpo.fakes import FakeBatchReward, FakeNPolicy
from langgraph_tpo.reward import RewardPair, Row, RowReward, WeightedReward, row_fields_of

QUERY = "What is 2 + 2?"


class ReferenceReward:
    """1.0 when the response contains the row's reference; records the rows it saw."""

    row_fields = ("reference",)

    def __init__(self) -> None:
        self.rows: list[Row] = []

    async def ascore_batch(self, pairs: Sequence[RewardPair], *, row: Row) -> list[float]:
        self.rows.append(row)
        return [float(str(row["reference"]) in response) for _, response in pairs]


def answers(kind: str, call: int, index: int) -> str:
    return f"answer {index}"


def graph_for(reward, policy: FakeNPolicy | None = None):  # noqa: ANN001, ANN201
    policy = policy or FakeNPolicy(responder=answers)
    return create_tpo_graph(policy, reward, TPOConfig(num_samples=3, max_iterations=1))


def test_a_row_reward_receives_the_row_of_the_input() -> None:
    reward = ReferenceReward()
    out = graph_for(reward).invoke({"query": QUERY, "row": {"reference": "2", "level": 1}})
    assert isinstance(reward, RowReward) and row_fields_of(reward) == ("reference",)
    assert reward.rows and all(row == {"reference": "2", "level": 1} for row in reward.rows)
    assert out["score"] == 1.0 and out["response"] == "answer 2"


def test_a_missing_row_field_is_an_error_naming_it_before_any_model_call() -> None:
    policy = FakeNPolicy(responder=answers)
    with pytest.raises(ConfigError, match="'reference' missing.*'level'"):
        graph_for(ReferenceReward(), policy).invoke({"query": QUERY, "row": {"level": 1}})
    with pytest.raises(ConfigError, match="no 'row'"):
        graph_for(ReferenceReward(), policy).invoke({"query": QUERY})
    assert policy.calls == []


def test_each_run_on_a_reused_thread_scores_with_its_own_row() -> None:
    reward = ReferenceReward()
    policy = FakeNPolicy(responder=answers)
    graph = create_tpo_graph(
        policy, reward, TPOConfig(num_samples=3, max_iterations=1), checkpointer=InMemorySaver()
    )
    thread = {"configurable": {"thread_id": "reused"}}
    first = graph.invoke({"query": QUERY, "row": {"reference": "2"}}, thread)
    second = graph.invoke({"query": QUERY, "row": {"reference": "1"}}, thread)
    assert (first["response"], second["response"]) == ("answer 2", "answer 1")
    assert {row["reference"] for row in reward.rows} == {"2", "1"}
    calls = len(policy.calls)
    with pytest.raises(ConfigError, match="no 'row'"):  # not the previous run's row
        graph.invoke({"query": QUERY}, thread)
    assert len(policy.calls) == calls


def test_rewards_without_row_fields_ignore_the_row() -> None:
    reward = FakeBatchReward()
    out = graph_for(reward).invoke({"query": QUERY, "row": {"reference": "2"}})
    assert row_fields_of(reward) == () and out["score"] == len("answer 0")


def test_weighted_reward_sums_its_parts_and_reads_their_row_fields() -> None:
    combined = WeightedReward([(FakeBatchReward(), 0.5), (ReferenceReward(), 10.0)])
    assert combined.row_fields == ("reference",)
    pairs = [([{"role": "user", "content": QUERY}], r) for r in ("it is 4", "five")]
    scores = asyncio.run(combined.ascore_batch(pairs, row={"reference": "4"}))
    assert scores == [0.5 * len("it is 4") + 10.0, 0.5 * len("five")]


def test_weighted_reward_of_plain_functions_needs_no_row() -> None:
    combined = WeightedReward([(lambda q, r: 1.0, 2.0), (lambda q, r: -1.0, 1.0)])
    pairs = [([{"role": "user", "content": QUERY}], "x")]
    assert combined.row_fields == ()
    assert asyncio.run(combined.ascore_batch(pairs)) == [1.0]


@pytest.mark.parametrize("parts", [[], [(lambda q, r: 1.0, float("nan"))]])
def test_weighted_reward_rejects_no_parts_and_bad_weights(parts) -> None:  # noqa: ANN001
    with pytest.raises(ConfigError):
        WeightedReward(parts)
