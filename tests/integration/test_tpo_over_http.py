"""The TPO graph end to end over HTTP against real vLLM servers: counts and prompt economy."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from langgraph_tpo import TPOConfig, create_tpo_graph
from langgraph_tpo.backends.servers.vllm_server import VLLMServerReward, vllm_chat_model

if TYPE_CHECKING:
    from tests.integration.conftest import VLLMServers

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

N, D = 3, 2
CHAT = {"handler": "/v1/chat/completions"}
CLASSIFY = {"handler": "/classify"}


def settle(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """vLLM may update a counter just after it answers; poll briefly."""
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:
        time.sleep(0.1)


def graph_for(servers: VLLMServers, **config):
    policy = vllm_chat_model(servers.policy_url, servers.policy_model)
    reward = VLLMServerReward(
        servers.reward_url, servers.reward_model, tokenizer_path=servers.reward_tokenizer_path
    )
    settings = TPOConfig(num_samples=N, max_iterations=D, max_tokens=24, seed=7, **config)
    return create_tpo_graph(policy, reward, settings), reward


async def test_tpo_over_http_uses_the_promised_requests(vllm_servers: VLLMServers) -> None:
    graph, reward = graph_for(vllm_servers)
    chat0 = vllm_servers.policy_metrics(CHAT).get("http_requests_total", 0.0)
    seq0 = vllm_servers.policy_metrics().get("vllm:request_success_total", 0.0)
    cls0 = vllm_servers.reward_metrics(CLASSIFY).get("http_requests_total", 0.0)

    out = await graph.ainvoke({"query": "How do I take care of a wooden table?"})

    generations = N + D * (2 + N)
    expected_seq = seq0 + generations
    settle(
        lambda: vllm_servers.policy_metrics().get("vllm:request_success_total", 0) >= expected_seq
    )
    chat = vllm_servers.policy_metrics(CHAT).get("http_requests_total", 0.0) - chat0
    sequences = vllm_servers.policy_metrics().get("vllm:request_success_total", 0.0) - seq0
    classify = vllm_servers.reward_metrics(CLASSIFY).get("http_requests_total", 0.0) - cls0

    assert out["stop_reason"] == "max_iterations" and len(out["trajectory"]) == D + 1
    assert chat == 1 + 3 * D  # one n=N request per sample/update, one per loss and gradient
    assert sequences == generations
    reward_requests = sum(e["reward_requests"] for e in out["trajectory"])
    assert classify == reward_requests == reward.requests_sent and 1 <= classify <= D + 1
    usage = [e["usage"] for e in out["trajectory"]]
    assert sum(u["requests"] for u in usage) == 1 + 3 * D
    assert sum(u["generations"] for u in usage) == generations
    assert all(u["prompt_tokens"] > 0 and u["completion_tokens"] > 0 for u in usage)
    assert out["response"] and out["score"] == max(c["score"] for c in out["candidates"])


async def test_seeded_runs_repeat_exactly(vllm_servers: VLLMServers) -> None:
    graph, _ = graph_for(vllm_servers, mode="bon")
    first = await graph.ainvoke({"query": "Name three fruits."})
    second = await graph.ainvoke({"query": "Name three fruits."})
    assert [c["text"] for c in first["candidates"]] == [c["text"] for c in second["candidates"]]
    assert [c["score"] for c in first["candidates"]] == [c["score"] for c in second["candidates"]]


async def test_multi_turn_messages_over_http(vllm_servers: VLLMServers) -> None:
    graph, _ = graph_for(vllm_servers, mode="revision")
    out = await graph.ainvoke(
        {
            "messages": [
                ("system", "You are terse."),
                ("human", "I have an oak table."),
                ("ai", "Nice."),
                ("human", "How do I clean it?"),
            ]
        }
    )
    assert out["messages"][-1].content == out["response"]
    assert out["messages"][-1].response_metadata["tpo"]["iterations"] == D
