"""Repetition controls (frequency_penalty, presence_penalty, repetition_penalty): checked as
settings, sent to every policy that applies them (the HTTP body of an OpenAI-compatible
server included), refused before any model call by a policy that cannot, and absent from
every call when unset (the paper's default)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from langchain_openai import ChatOpenAI

from langgraph_tpo import TPOConfig, create_tpo_graph
from langgraph_tpo.backends.inprocess.transformers_chat import TransformersChatModel
from langgraph_tpo.backends.inprocess.vllm_inprocess import VLLMChatModel, sampling_param_values
from langgraph_tpo.backends.servers.multi_server import BalancedChatModel
from langgraph_tpo.errors import ConfigError
from langgraph_tpo.fakes import FakeNPolicy, FakePenaltyPolicy, FakePolicy
from langgraph_tpo.policy import PENALTIES, accepted_penalties, generate, sampling_kwargs

QUERY = "Write a short poem about rain."
SET = {"frequency_penalty": 0.5, "presence_penalty": -0.25, "repetition_penalty": 1.3}
PROMPT = [("user", QUERY)]


def length(query: str, response: str) -> float:
    return float(len(response))


# --- the settings ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "values,field",
    [
        ({"frequency_penalty": 2.5}, "frequency_penalty"),
        ({"frequency_penalty": -2.01}, "frequency_penalty"),
        ({"presence_penalty": 3}, "presence_penalty"),
        ({"presence_penalty": float("nan")}, "presence_penalty"),
        ({"repetition_penalty": 0}, "repetition_penalty"),
        ({"repetition_penalty": -1.1}, "repetition_penalty"),
        ({"repetition_penalty": float("inf")}, "repetition_penalty"),
        ({"repetition_penalty": "1.2"}, "repetition_penalty"),  # strict, as every field
    ],
)
def test_out_of_range_values_are_a_config_error_naming_the_field(
    values: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError, match=f"{field}: "):
        TPOConfig(**values)


def test_the_range_ends_are_accepted() -> None:
    config = TPOConfig(frequency_penalty=-2, presence_penalty=2.0, repetition_penalty=0.01)
    assert (config.frequency_penalty, config.presence_penalty) == (-2.0, 2.0)


def test_the_paper_default_sends_none_of_them() -> None:
    assert all(getattr(TPOConfig(), name) is None for name in PENALTIES)
    assert not set(PENALTIES) & set(sampling_kwargs(TPOConfig()))


def test_only_the_set_ones_are_sent() -> None:
    kwargs = sampling_kwargs(TPOConfig(presence_penalty=0.0))
    assert kwargs["presence_penalty"] == 0.0
    assert "frequency_penalty" not in kwargs and "repetition_penalty" not in kwargs


# --- which policies apply them ----------------------------------------------------------


def chat_openai(handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any) -> ChatOpenAI:
    """A ChatOpenAI whose HTTP requests (sync and async) go to ``handler``."""
    transport = httpx.MockTransport(handler)
    return ChatOpenAI(
        model="m",
        base_url="http://policy.test/v1",
        api_key="unused",
        max_retries=0,
        http_client=httpx.Client(transport=transport),
        http_async_client=httpx.AsyncClient(transport=transport),
        **kwargs,
    )


class ChatServer:
    """An OpenAI-compatible chat endpoint that records each request's JSON body."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        choices = [
            {"index": i, "message": {"role": "assistant", "content": f"answer {i}"},
             "finish_reason": "stop"}
            for i in range(body.get("n") or 1)
        ]  # fmt: skip
        return httpx.Response(
            200,
            json={"id": "c", "object": "chat.completion", "created": 0, "model": body["model"],
                  "choices": choices},
        )  # fmt: skip


@pytest.mark.parametrize(
    "policy,accepted",
    [
        (chat_openai(ChatServer()), set(PENALTIES)),
        (BalancedChatModel(clients=[chat_openai(ChatServer()), chat_openai(ChatServer())]),
         set(PENALTIES)),
        (TransformersChatModel(), set(PENALTIES)),
        (VLLMChatModel(model="m"), set(PENALTIES)),
        (FakePenaltyPolicy(), set(PENALTIES)),
        (FakeNPolicy(), set()),
        (FakePolicy(), set()),
    ],
    ids=lambda value: type(value).__name__,
)  # fmt: skip
def test_which_policies_apply_the_penalties(policy: Any, accepted: set[str]) -> None:
    assert accepted_penalties(policy) == accepted


def assert_penalties_in(body: dict[str, Any]) -> None:
    assert body["frequency_penalty"] == 0.5 and body["presence_penalty"] == -0.25
    assert body["repetition_penalty"] == 1.3  # vLLM reads it from the body's extra fields


async def test_chat_openai_sends_them_in_the_request_body() -> None:
    server = ChatServer()
    await generate(chat_openai(server), PROMPT, 2, TPOConfig(**SET))
    (body,) = server.bodies
    assert_penalties_in(body)
    assert body["n"] == 2 and body["temperature"] == 0.7


async def test_repetition_penalty_joins_the_models_own_extra_body() -> None:
    server = ChatServer()
    policy = chat_openai(server, extra_body={"top_k": 20, "repetition_penalty": 1.0})
    await generate(policy, PROMPT, 1, TPOConfig(repetition_penalty=1.3))
    (body,) = server.bodies
    assert body["top_k"] == 20 and body["repetition_penalty"] == 1.3
    assert "frequency_penalty" not in body and "presence_penalty" not in body


async def test_chat_openai_without_penalties_sends_no_new_keys() -> None:
    server = ChatServer()
    await generate(chat_openai(server), PROMPT, 2, TPOConfig())
    (body,) = server.bodies
    assert not set(PENALTIES) & set(body)


async def test_balanced_model_sends_them_through_its_client() -> None:
    servers = [ChatServer(), ChatServer()]
    clients = [chat_openai(servers[0]), chat_openai(servers[1], extra_body={"top_k": 20})]
    policy = BalancedChatModel(clients=clients)
    await generate(policy, PROMPT, 2, TPOConfig(**SET))
    await generate(policy, PROMPT, 2, TPOConfig())
    bodies = [body for server in servers for body in server.bodies]
    assert len(bodies) == 2
    assert_penalties_in(bodies[0])
    assert not set(PENALTIES) & set(bodies[1])


def test_balanced_model_merges_each_clients_extra_body_on_sync_calls() -> None:
    server = ChatServer()
    policy = BalancedChatModel(clients=[chat_openai(server, extra_body={"top_k": 20})])
    policy.invoke(QUERY, repetition_penalty=1.3, extra_body={"min_p": 0.1})
    (body,) = server.bodies
    assert (body["top_k"], body["min_p"], body["repetition_penalty"]) == (20, 0.1, 1.3)


# --- through the graph ------------------------------------------------------------------


def test_every_policy_call_of_a_run_gets_them() -> None:
    policy = FakePenaltyPolicy()
    config = TPOConfig(num_samples=2, max_iterations=1, **SET)
    create_tpo_graph(policy, length, config).invoke({"query": QUERY})
    assert [c["kind"] for c in policy.calls] == ["sample", "loss", "gradient", "update"]
    assert all(c["kwargs"].items() >= SET.items() for c in policy.calls)


def test_a_run_with_the_paper_defaults_sends_no_penalty() -> None:
    policy = FakeNPolicy()
    create_tpo_graph(policy, length, TPOConfig(num_samples=2, max_iterations=1)).invoke(
        {"query": QUERY}
    )
    assert policy.calls and all(not set(PENALTIES) & set(c["kwargs"]) for c in policy.calls)


@pytest.mark.parametrize("field", PENALTIES)
async def test_a_policy_that_cannot_apply_one_is_refused_before_any_call(field: str) -> None:
    policy = FakeNPolicy()
    graph = create_tpo_graph(policy, length, TPOConfig(num_samples=2, max_iterations=1))
    with pytest.raises(ConfigError, match=f"FakeNPolicy cannot apply {field}"):
        await graph.ainvoke({"query": QUERY}, context={field: SET[field]})
    assert policy.calls == []


# --- in-process vLLM: the SamplingParams arguments ----------------------------------------

VALUES = {
    "n": 3, "temperature": 0.7, "top_p": 0.95, "max_tokens": 64, "seed": None,
    "logprobs": False, "top_logprobs": 0,
}  # fmt: skip
MODEL_DEFAULTS = {"repetition_penalty": 1.05, "top_k": 20}  # the model's generation_config


def test_vllm_sampling_params_take_the_set_penalties_over_the_models_defaults() -> None:
    params = sampling_param_values({**VALUES, **SET}, MODEL_DEFAULTS, None, room=100)
    assert params.items() >= {**SET, "top_k": 20, "n": 3, "max_tokens": 64}.items()


def test_vllm_sampling_params_keep_the_models_defaults_when_unset() -> None:
    unset = dict.fromkeys(PENALTIES)
    params = sampling_param_values({**VALUES, **unset}, MODEL_DEFAULTS, None, room=10)
    assert params["repetition_penalty"] == 1.05 and params["max_tokens"] == 10
    assert "frequency_penalty" not in params and "presence_penalty" not in params


def test_vllm_model_passes_call_kwargs_through_to_the_sampling_values() -> None:
    values = VLLMChatModel(model="m").sampling_values({"presence_penalty": 0.4})
    assert values["presence_penalty"] == 0.4 and values["repetition_penalty"] is None
