"""A conversation that cannot fit the policy's context window with its reply is a
ConfigError naming the length and the limit, before any model call."""

from __future__ import annotations

import time

import pytest
from langchain_core.messages import BaseMessage, HumanMessage

from langgraph_tpo import ConfigError, TPOConfig, create_tpo_graph
from langgraph_tpo.backends.servers.multi_server import BalancedChatModel
from langgraph_tpo.backends.servers.vllm_server import served_max_model_len, vllm_chat_model
from langgraph_tpo.context_window import check_fits_context
from langgraph_tpo.fakes import FakeNPolicy
from tests.serve.helpers import serving

SMALL = TPOConfig(num_samples=2, max_iterations=1, max_tokens=64)


class WindowPolicy(FakeNPolicy):
    """A fake policy with a context window of ``window`` tokens and two tokens a word."""

    window: int = 512
    counted: list[int] = []

    async def acontext_window(self) -> int | None:
        return self.window

    async def acount_prompt_tokens(self, messages: list[BaseMessage]) -> int:
        tokens = 2 * sum(len(m.text.split()) for m in messages)
        self.counted.append(tokens)
        return tokens


def length_reward(query: str, response: str) -> float:
    return float(len(response))


def test_a_200k_character_query_is_refused_at_once_without_counting() -> None:
    policy = WindowPolicy(counted=[])
    graph = create_tpo_graph(policy, length_reward, SMALL)
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=r"200\d\d\d characters.*context window of 512 tokens"):
        graph.invoke({"query": "x " * 100_000})
    assert time.perf_counter() - start < 2.0
    assert policy.calls == [] and policy.counted == []  # the lower bound was enough


def test_the_exact_count_refuses_what_the_bound_let_through() -> None:
    policy = WindowPolicy(counted=[])
    graph = create_tpo_graph(policy, length_reward, SMALL)
    with pytest.raises(ConfigError, match=r"is 6\d\d tokens.*max_tokens 64.*window of 512"):
        graph.invoke({"messages": [HumanMessage("word " * 300)]})
    assert policy.calls == []


def test_a_conversation_that_fits_runs() -> None:
    policy = WindowPolicy(counted=[])
    out = create_tpo_graph(policy, length_reward, SMALL).invoke({"query": "word " * 100})
    assert out["response"] and policy.counted


def test_a_users_model_gets_its_window_from_the_config() -> None:
    policy = FakeNPolicy()
    graph = create_tpo_graph(policy, length_reward, SMALL.with_overrides({"context_window": 100}))
    with pytest.raises(ConfigError, match="window of 100 tokens"):
        graph.invoke({"query": "word " * 200})
    assert policy.calls == []
    assert graph.invoke({"query": "short"}, context={"context_window": None})["response"]


def test_max_tokens_that_fill_the_window_leave_no_room() -> None:
    with pytest.raises(ConfigError, match="max_tokens 512 leaves no room.*512 tokens"):
        create_tpo_graph(WindowPolicy(), length_reward, {"max_tokens": 512}).invoke({"query": "q"})


async def test_a_policy_that_does_not_say_is_not_checked() -> None:
    await check_fits_context(FakeNPolicy(), [HumanMessage("x " * 100_000)], 64, None)


def models_app(listed: list[dict]):  # noqa: ANN201
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def models(request):  # noqa: ANN001, ANN202
        return JSONResponse({"object": "list", "data": listed})

    return Starlette(routes=[Route("/v1/models", models)])


async def test_vllm_servers_report_max_model_len_of_v1_models() -> None:
    listed = [{"id": "other", "max_model_len": 9}, {"id": "tiny", "max_model_len": 4096}]
    with serving(models_app(listed)) as url:
        policy = vllm_chat_model(url, "tiny")
        assert await policy.acontext_window() == 4096
        assert await served_max_model_len(url, "unknown", None) == 9
        both = vllm_chat_model([url, url.replace("127.0.0.1", "localhost")], "tiny")
        assert isinstance(both, BalancedChatModel) and await both.acontext_window() == 4096


async def test_a_server_without_max_model_len_is_not_checked() -> None:
    with serving(models_app([{"id": "gpt"}])) as url:
        assert await vllm_chat_model(url, "gpt").acontext_window() is None
