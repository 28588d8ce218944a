"""Every policy and judge call runs under the node's callbacks and says which step made it:
callback handlers, ``stream_mode="messages"``, ``astream_events`` and LangChain's own fake
chat models see what the design promises."""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessageChunk

from langgraph_tpo import TPOConfig, create_tpo_graph
from langgraph_tpo.backends.rewards.judge import JudgeReward
from langgraph_tpo.fakes import FakeNPolicy, FakePolicy
from testsupport.fake_backends import FakeTPOPolicy

from .test_prompt_sets import CUSTOM

QUERY = "Name three uses of a paperclip."
STEPS = ("sample", "textual_loss", "textual_gradient", "update")


def length(query: str, response: str) -> float:
    return float(len(response))


class ChatModelStarts(BaseCallbackHandler):
    """Records each chat model run's step metadata, node and tags."""

    def __init__(self) -> None:
        self.runs: list[dict[str, Any]] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        metadata = kwargs.get("metadata") or {}
        self.runs.append(
            {
                "step": metadata.get("tpo_step"),
                "node": metadata.get("langgraph_node"),
                "tags": kwargs.get("tags") or [],
                "name": kwargs.get("name"),
            }
        )


@pytest.mark.parametrize("d", [1, 2, 3])
def test_a_callback_handler_sees_exactly_one_plus_3d_calls(d: int) -> None:
    handler = ChatModelStarts()
    graph = create_tpo_graph(FakeNPolicy(), length, TPOConfig(num_samples=4, max_iterations=d))
    graph.invoke({"query": QUERY}, config={"callbacks": [handler]})
    assert len(handler.runs) == 1 + 3 * d
    assert [r["step"] for r in handler.runs] == ["sample", *STEPS[1:] * d]
    for run in handler.runs:
        assert run["node"] == run["step"]  # each call is a child of its node's run
        assert f"tpo:{run['step']}" in run["tags"] and run["name"] == f"tpo:{run['step']}"


async def test_a_policy_without_n_makes_n_labelled_calls() -> None:
    handler = ChatModelStarts()
    graph = create_tpo_graph(FakePolicy(), length, TPOConfig(num_samples=3, max_iterations=1))
    await graph.ainvoke({"query": QUERY}, config={"callbacks": [handler]})
    assert Counter(r["step"] for r in handler.runs) == {
        "sample": 3,
        "textual_loss": 1,
        "textual_gradient": 1,
        "update": 3,
    }


def generic_fake() -> GenericFakeChatModel:
    """LangChain's own fake: streams its canned answers word by word, knows no ``n``."""
    answers = itertools.cycle(
        ["Bend it into a hook.", "Use it as a bookmark.", "Reset a router with it."]
    )
    return GenericFakeChatModel(messages=answers)


def test_generic_fake_chat_model_works_as_the_policy() -> None:
    out = create_tpo_graph(
        generic_fake(), length, TPOConfig(num_samples=2, max_iterations=1)
    ).invoke({"query": QUERY})
    assert out["stop_reason"] == "max_iterations"
    # its replies carry no delimiters: dropped by the default extraction, counted
    assert out["trajectory"][1]["extraction"] == {"no_open_tag": 2}
    assert out["response"]


async def test_stream_mode_messages_streams_each_steps_tokens_with_its_node() -> None:
    graph = create_tpo_graph(generic_fake(), length, TPOConfig(num_samples=2, max_iterations=1))
    chunks: Counter[tuple[str, str]] = Counter()
    async for message, metadata in graph.astream({"query": QUERY}, stream_mode="messages"):
        if isinstance(message, AIMessageChunk):
            chunks[(metadata["langgraph_node"], metadata["tpo_step"])] += 1
    assert {node for node, _ in chunks} == set(STEPS)
    assert all(node == step for node, step in chunks)
    assert all(count > 2 for count in chunks.values())  # tokens, not whole messages


async def test_stream_mode_messages_shows_n_sample_requests_once_each() -> None:
    policy = FakeNPolicy()
    graph = create_tpo_graph(policy, length, TPOConfig(num_samples=3, max_iterations=1))
    seen = [
        metadata["tpo_step"]
        async for _, metadata in graph.astream({"query": QUERY}, stream_mode="messages")
    ]
    assert Counter(seen) == {"sample": 1, "textual_loss": 1, "textual_gradient": 1, "update": 1}
    assert [c["n"] for c in policy.calls if c["kind"] in ("sample", "update")] == [3, 3]


async def test_astream_events_has_chat_model_events_per_step() -> None:
    graph = create_tpo_graph(FakeNPolicy(), length, TPOConfig(num_samples=2, max_iterations=2))
    starts: list[tuple[str, str]] = []
    ends = 0
    async for event in graph.astream_events({"query": QUERY}, version="v2"):
        if event["event"] == "on_chat_model_start":
            starts.append((event["metadata"]["langgraph_node"], event["metadata"]["tpo_step"]))
            assert f"tpo:{event['metadata']['tpo_step']}" in event["tags"]
        ends += event["event"] == "on_chat_model_end"
    assert [step for _, step in starts] == ["sample", *STEPS[1:] * 2]
    assert all(node == step for node, step in starts) and ends == len(starts)


def test_judge_calls_are_labelled_children_of_the_reward_node() -> None:
    handler = ChatModelStarts()
    judge = JudgeReward(
        GenericFakeChatModel(messages=itertools.cycle(["7"])), request_logprobs=False
    )
    graph = create_tpo_graph(FakeNPolicy(), judge, TPOConfig(num_samples=2, max_iterations=1))
    graph.invoke({"query": QUERY}, config={"callbacks": [handler]})
    judged = [r for r in handler.runs if r["step"] == "judge"]
    assert len(judged) == 4  # 2 samples + 2 rewrites
    assert all(r["node"] == "reward_score" and "tpo:judge" in r["tags"] for r in judged)


@pytest.mark.parametrize("make_policy", [FakeNPolicy, FakePolicy, FakeTPOPolicy, generic_fake])
def test_reworded_prompts_work_with_every_in_process_test_double(make_policy: Any) -> None:
    policy = make_policy()
    handler = ChatModelStarts()
    out = create_tpo_graph(
        policy, length, TPOConfig(num_samples=2, max_iterations=1), prompts=CUSTOM
    ).invoke({"query": QUERY}, config={"callbacks": [handler]})
    assert out["stop_reason"] == "max_iterations"
    assert {r["step"] for r in handler.runs} == set(STEPS)
    if hasattr(policy, "calls"):
        assert {c["kind"] for c in policy.calls} == {"sample", "loss", "gradient", "update"}
    if make_policy is not generic_fake:  # its canned answers ignore the delimiters
        assert set(out["trajectory"][1]["extraction"]) == {"tagged"}
