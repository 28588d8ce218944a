"""Reward adapters, and rewards that fail or return unrankable scores."""

from __future__ import annotations

import asyncio
import math

import pytest
from langchain_core.runnables import RunnableLambda

from langgraph_tpo import RewardError, TPOConfig, as_batch_reward, create_tpo_graph
from langgraph_tpo.fakes import FakeBatchReward, FakeNPolicy
from langgraph_tpo.reward import check_scores

QUERY = "Explain photosynthesis."


def run(reward, **config):
    graph = create_tpo_graph(FakeNPolicy(), reward, TPOConfig(num_samples=3, **config))
    return graph.invoke({"query": QUERY})


def test_sync_callable_receives_query_and_response() -> None:
    seen: list[tuple[str, str]] = []

    def reward(query: str, response: str) -> float:
        seen.append((query, response))
        return float(len(response))

    out = run(reward, max_iterations=1)
    assert len(seen) == 6 and all(q == QUERY for q, _ in seen)
    assert out["score"] == max(len(r) for _, r in seen)


def test_async_callable_is_awaited() -> None:
    async def reward(query: str, response: str) -> float:
        await asyncio.sleep(0)
        return -float(len(response))

    out = run(reward, max_iterations=1)
    assert out["score"] == -len("answer 0")


def test_runnable_reward_is_batched() -> None:
    calls: list[dict] = []

    def score(inp: dict) -> float:
        calls.append(inp)
        return {"score": float(len(inp["response"]))}

    out = run(RunnableLambda(score), max_iterations=0)
    assert len(calls) == 3 and calls[0]["conversation"][-1]["content"] == QUERY
    assert out["score"] == len("answer 0")


def test_batch_reward_gets_one_call_per_scoring_step() -> None:
    reward = FakeBatchReward()
    run(reward, max_iterations=2)
    assert len(reward.batches) == 3


def test_as_batch_reward_rejects_non_callables() -> None:
    with pytest.raises(TypeError, match="reward must be"):
        as_batch_reward(42)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, "high", None, "7", True, [1.0]])
def test_non_finite_scores_are_an_error_naming_the_candidate(bad) -> None:
    def reward(query: str, response: str):
        return bad if response == "answer 1" else 1.0

    with pytest.raises(RewardError, match=r"candidate 1 \('answer 1'\)"):
        run(reward)


def test_wrong_number_of_scores_is_an_error() -> None:
    class Short:
        async def ascore_batch(self, pairs):
            return [1.0] * (len(pairs) - 1)

    with pytest.raises(RewardError, match="2 scores for 3 candidates"):
        run(Short())


def test_reward_exception_is_wrapped_with_its_cause() -> None:
    def reward(query: str, response: str) -> float:
        raise KeyError("no such head")

    with pytest.raises(RewardError, match="no such head") as info:
        run(reward)
    assert isinstance(info.value.__cause__, KeyError)
    assert not info.value.transient


def test_runnable_returning_a_non_number_is_an_error_naming_the_candidate() -> None:
    def replying(bad: object) -> RunnableLambda:
        return RunnableLambda(lambda x: bad if x["response"] == "answer 1" else 1.0)

    with pytest.raises(RewardError, match=r"'7' for candidate 1 \('answer 1'\): a str is not"):
        run(replying("7"))
    with pytest.raises(RewardError, match=r"False for candidate 1 \('answer 1'\): a bool is not"):
        run(replying({"score": False}))


def test_check_scores_passes_finite_numbers_through() -> None:
    import numpy as np

    assert check_scores([1, 2.5, np.float32(3.0)], ["a", "b", "c"]) == [1.0, 2.5, 3.0]
    with pytest.raises(RewardError, match="'3' for candidate 2 \\('c'\\): a str is not a score"):
        check_scores([1, 2.5, "3"], ["a", "b", "c"])
