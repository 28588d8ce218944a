"""What ``stop`` and ``finish_reason`` mean in the TPO graph itself (the server passes the
request's ``stop`` as the graph's ``stop`` input and answers the state's finish reasons)."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage

from langgraph_tpo import create_tpo_graph
from langgraph_tpo.errors import ConfigError
from tests.serve.helpers import SMALL, TokenPolicy, length_reward

# TokenPolicy answers "answer i" to samples, "improved answer r.i" (in delimiters) to updates


async def test_stop_reaches_sampling_only_and_cuts_every_response() -> None:
    policy = TokenPolicy()
    graph = create_tpo_graph(policy, length_reward(), SMALL)
    out = await graph.ainvoke({"query": "Hi", "stop": [" answer", "swer"]})
    texts = {c["text"] for c in out["candidates"]}
    assert texts == {"an", "improved"}  # samples and update outputs alike
    assert out["response"] == "improved" and out["score"] == float(len("improved"))
    assert out["finish_reason"] == "stop"
    assert dict(policy.stops) == {
        "sample": [" answer", "swer"],
        "loss": None,
        "gradient": None,
        "update": None,  # the update output wraps the response in delimiters: cut after
    }


async def test_finish_reason_is_length_for_a_response_the_policy_ended_at_max_tokens() -> None:
    graph = create_tpo_graph(TokenPolicy(finish="length"), length_reward(), SMALL)
    out = await graph.ainvoke({"messages": [HumanMessage("Hi")]})
    assert out["finish_reason"] == "length"
    assert out["messages"][-1].response_metadata["finish_reason"] == "length"
    whole = await graph.ainvoke({"messages": [HumanMessage("Hi")], "stop": [" "]})
    assert whole["response"] == "improved"  # cut at a stop string: the answer is whole
    assert whole["finish_reason"] == "stop"
    plain = await create_tpo_graph(TokenPolicy(), length_reward(), SMALL).ainvoke({"query": "Hi"})
    assert plain["finish_reason"] == "stop"


@pytest.mark.parametrize("stop", ["\n", [""], [3]])
async def test_a_bad_stop_is_a_config_error_before_any_model_call(stop) -> None:
    policy = TokenPolicy()
    with pytest.raises(ConfigError, match="stop must be a list of non-empty strings"):
        await create_tpo_graph(policy, length_reward(), SMALL).ainvoke(
            {"query": "Hi", "stop": stop}
        )
    assert policy.calls == []


async def test_each_run_on_a_reused_thread_has_its_own_stop() -> None:
    from langgraph.checkpoint.memory import InMemorySaver

    graph = create_tpo_graph(TokenPolicy(), length_reward(), SMALL, checkpointer=InMemorySaver())
    thread = {"configurable": {"thread_id": "reused"}}
    cut = await graph.ainvoke({"query": "Hi", "stop": [" answer", "swer"]}, thread)
    assert cut["response"] == "improved"
    whole = await graph.ainvoke({"query": "Hi"}, thread)  # no stop: not the previous run's
    assert whole["response"].startswith("improved answer")
