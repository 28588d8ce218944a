"""Odd model output: rewards that are not finite numbers, wrong counts or failures, and policy
texts that are empty, whitespace, untagged, double-tagged or refusals.

A bad reward is reported naming the candidate and never ranked (the checkpoint shows the
batch unscored); odd policy texts go through the extraction rules and are counted in the
trajectory.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver

from langgraph_tpo import PromptSet, RewardError, TPOConfig, create_tpo_graph
from langgraph_tpo.fakes import FakeNPolicy
from langgraph_tpo.prompts import COMPACT
from langgraph_tpo.reward import RewardPair

from .conftest import QUERY, QUICK, SMALL, Backends

N3 = TPOConfig(num_samples=3, max_iterations=1, max_tokens=8)


def classify_fault(action: str, **extra: Any) -> dict[str, Any]:
    return {"faults": [{"path": "classify", "action": action, **extra}]}


@pytest.mark.parametrize(
    "config,message",
    [
        (classify_fault("nan", index=1), r"reward returned nan for candidate 1 \('answer:"),
        (classify_fault("inf", index=2), r"reward returned inf for candidate 2 \('answer:"),
        (classify_fault("null", index=0), r"result for candidate 0 lacks a numeric probs\[0\]"),
        (classify_fault("short"), r"returned 2 results for 3 inputs"),
        (classify_fault("status", status=422), r"answered HTTP 422"),
    ],
    ids=["nan", "inf", "null", "wrong-count", "raises"],
)
async def test_bad_reward_over_http_is_reported_and_never_ranked(
    backends: Backends, config: dict[str, Any], message: str
) -> None:
    backends.reward.configure(config)
    graph = create_tpo_graph(
        backends.chat_model(), backends.reward_model(), N3,
        checkpointer=InMemorySaver(), retry=QUICK,
    )  # fmt: skip
    thread: RunnableConfig = {"configurable": {"thread_id": "bad-reward"}}
    with pytest.raises(RewardError, match=message) as info:
        await graph.ainvoke({"query": QUERY}, thread)
    assert not info.value.transient  # a wrong answer is not fixed by asking again
    assert backends.reward.count("classify") == 1
    state = await graph.aget_state(thread)
    assert state.next == ("reward_score",)  # stopped at scoring...
    assert state.values["candidates"] == [] and "score" not in state.values  # ...nothing ranked


class ScriptedReward:
    """A batch reward returning ``scores`` (or raising ``error``) for every batch."""

    def __init__(self, scores: Sequence[Any] = (), error: Exception | None = None) -> None:
        self.scores = list(scores)
        self.error = error

    async def ascore_batch(self, pairs: Sequence[RewardPair]) -> list[Any]:
        if self.error is not None:
            raise self.error
        return self.scores


@pytest.mark.parametrize(
    "reward,message",
    [
        (ScriptedReward([1.0, math.nan, 2.0]), r"returned nan for candidate 1 \('answer 1'\)"),
        (ScriptedReward([1.0, 2.0, -math.inf]), r"returned -inf for candidate 2 \('answer 2'\)"),
        (ScriptedReward(["high", 1.0, 2.0]), r"returned 'high' for candidate 0 \('answer 0'\)"),
        (ScriptedReward([None, 1.0, 2.0]), r"returned None for candidate 0"),
        (ScriptedReward([1.0, 2.0]), r"returned 2 scores for 3 candidates"),
        (ScriptedReward([1.0] * 4), r"returned 4 scores for 3 candidates"),
        (ScriptedReward(error=ValueError("model exploded")), r"ValueError: model exploded"),
        (lambda q, r: 1.0 / 0.0 if r == "answer 1" else 1.0, r"ZeroDivisionError"),
        (lambda q, r: math.nan if r == "answer 2" else 1.0, r"nan for candidate 2 \('answer 2'\)"),
    ],
    ids=["nan", "-inf", "string", "none", "too-few", "too-many", "raises", "fn-raises", "fn-nan"],
)
def test_bad_reward_in_process_is_reported_naming_the_candidate(reward: Any, message: str) -> None:
    policy = FakeNPolicy()
    graph = create_tpo_graph(policy, reward, N3, checkpointer=InMemorySaver(), retry=QUICK)
    thread: RunnableConfig = {"configurable": {"thread_id": "t"}}
    with pytest.raises(RewardError, match=message):
        graph.invoke({"query": QUERY}, thread)
    assert graph.get_state(thread).values["candidates"] == []
    assert policy.count("sample") == 3 and policy.count() == 3  # no retry of a bad answer


def test_failing_per_pair_reward_names_the_candidate() -> None:
    def reward(query: str, response: str) -> float:
        if response == "answer 1":
            raise ValueError("cannot score this one")
        return 1.0

    graph = create_tpo_graph(FakeNPolicy(), reward, N3, retry=QUICK)
    with pytest.raises(RewardError, match=r"candidate 1 \('answer 1'\)"):
        graph.invoke({"query": QUERY})


UPDATE_OUTPUTS = [
    "",
    "   \n\t ",
    "A plain rewrite with no delimiters at all.",
    "{START}draft{END} then {START}final answer: good good good good{END}",
    "I'm sorry, but I can't help with that request.",
    "{START}cut off before the closing tag",
    "only the end{END} and trailing text",
    "{START}   {END}",
    "## Chosen answer\n{START}{END}",  # the prompt's own scaffolding echoed back
]


async def _odd_updates(backends: Backends, extraction: str) -> dict[str, Any]:
    backends.policy.configure({"outputs": {"update": UPDATE_OUTPUTS}})
    config = TPOConfig(
        num_samples=len(UPDATE_OUTPUTS), max_iterations=1, max_tokens=8, extraction=extraction
    )
    graph = create_tpo_graph(backends.chat_model(), backends.reward_model(), config, retry=QUICK)
    out = await graph.ainvoke({"query": QUERY})
    assert out["stop_reason"] == "max_iterations"
    assert all("improved_response" not in c["text"] for c in out["candidates"])
    return out


async def test_odd_update_outputs_follow_the_lenient_extraction_rules(backends: Backends) -> None:
    out = await _odd_updates(backends, "lenient")
    entry = out["trajectory"][1]
    assert entry["extraction"] == {
        "empty": 3,  # "", whitespace, an empty tagged block
        "untagged": 2,  # no delimiters; the refusal
        "tagged": 1,  # delimiters twice: the last non-empty block
        "open_tag_only": 1,
        "close_tag_only": 1,
        "scaffolding": 1,
    }
    assert entry["dropped"] == 4
    new = [c["text"] for c in out["candidates"] if c["iteration"] == 1]
    assert new == [
        "A plain rewrite with no delimiters at all.",
        "final answer: good good good good",
        "I'm sorry, but I can't help with that request.",
        "cut off before the closing tag",
        "only the end",
    ]


async def test_strict_extraction_keeps_only_text_after_an_opening_delimiter(
    backends: Backends,
) -> None:
    out = await _odd_updates(backends, "strict")
    entry = out["trajectory"][1]
    assert entry["extraction"] == {"no_open_tag": 5, "tagged": 1, "open_tag_only": 1, "empty": 2}
    assert entry["dropped"] == 7
    new = [c["text"] for c in out["candidates"] if c["iteration"] == 1]
    assert new == ["draft", "cut off before the closing tag"]


async def test_unusable_samples_are_dropped_and_counted(backends: Backends) -> None:
    backends.policy.configure({"outputs": {"sample": ["", "  ", "answer: good good"]}})
    graph = create_tpo_graph(backends.chat_model(), backends.reward_model(), N3, retry=QUICK)
    out = await graph.ainvoke({"query": QUERY})
    assert out["trajectory"][0]["dropped"] == 2
    assert [c["text"] for c in out["candidates"] if c["iteration"] == 0] == ["answer: good good"]


async def test_no_usable_sample_stops_with_no_candidates(backends: Backends) -> None:
    backends.policy.configure({"outputs": {"sample": ["", " \n "]}})
    graph = create_tpo_graph(backends.chat_model(), backends.reward_model(), N3, retry=QUICK)
    out = await graph.ainvoke({"query": QUERY})
    assert out["stop_reason"] == "no_candidates" and out["candidates"] == []
    assert out["trajectory"][0]["dropped"] == 3
    assert backends.reward.count() == 0  # nothing to score


async def test_update_with_no_usable_output_is_recorded_and_the_loop_goes_on(
    backends: Backends,
) -> None:
    empty = ["", "{START}{END}"]
    backends.policy.configure({"outputs": {"update": empty}})
    config = TPOConfig(num_samples=2, max_iterations=2, max_tokens=8)
    graph = create_tpo_graph(backends.chat_model(), backends.reward_model(), config, retry=QUICK)
    out = await graph.ainvoke({"query": QUERY})
    assert [e["dropped"] for e in out["trajectory"]] == [0, 2, 2]
    assert out["stop_reason"] == "max_iterations" and len(out["candidates"]) == 2


async def test_the_stub_tells_steps_apart_by_header_whatever_the_wording(
    backends: Backends,
) -> None:
    """Reworded prompts (a custom set) over HTTP: ChatOpenAI sends the step in a header."""
    custom = PromptSet.from_dict(
        {
            **COMPACT.to_dict(),
            "name": "reworded",
            "update": [
                {"role": "human", "content": "Improve {chosen} using {textual_gradient}."},
                {"role": "human", "content": "Answer inside {start} ... {end}."},
            ],
        }
    )
    graph = create_tpo_graph(
        backends.chat_model(), backends.reward_model(), SMALL, retry=QUICK, prompts=custom
    )
    out = await graph.ainvoke({"query": QUERY})
    kinds = [r["kind"] for r in backends.policy.requests("chat")]
    assert kinds == ["sample", "loss", "gradient", "update"]
    assert out["trajectory"][1]["extraction"] == {"tagged": 2}  # the stub used the run's tags
