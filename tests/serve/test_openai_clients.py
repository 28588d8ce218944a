"""The Chat Completions endpoint driven by real clients (openai SDK, ChatOpenAI, httpx) over
real HTTP (uvicorn), on fake models injected through ``create_app``."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from typing import Any

import httpx
import openai
import pytest
from langchain_openai import ChatOpenAI

from langgraph_tpo import TPOConfig, create_tpo_graph
from langgraph_tpo.backends.factory import BackendSettings
from langgraph_tpo.errors import ConfigError
from langgraph_tpo.serve import create_app
from tests.serve.helpers import (
    SMALL,
    GatedPolicy,
    TokenPolicy,
    length_reward,
    marked_prompt_set,
    serving,
)

CONVERSATION = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "I have an oak table."},
    {"role": "assistant", "content": "Nice."},
    {"role": "user", "content": "How do I clean it?"},
]
SETTINGS = {"num_samples": 3, "max_iterations": 2}


async def direct_run(settings: dict) -> dict:
    """The same run through the graph directly: the oracle for what the endpoint returns."""
    graph = create_tpo_graph(TokenPolicy(), length_reward(), {**SMALL, **settings})
    return await graph.ainvoke({"messages": CONVERSATION})


async def test_sync_client_gets_the_optimized_reply(base_url: str, policy: TokenPolicy) -> None:
    client = openai.OpenAI(base_url=base_url, api_key="unused")
    reply = client.chat.completions.create(
        model="tpo", messages=CONVERSATION, extra_body={"tpo": SETTINGS}
    )
    expected = await direct_run(SETTINGS)
    assert reply.object == "chat.completion" and reply.model == "tpo"
    (choice,) = reply.choices
    assert choice.message.role == "assistant" and choice.finish_reason == "stop"
    assert choice.message.content == expected["response"]
    tpo = reply.model_extra["tpo"]
    assert tpo["score"] == expected["score"] and tpo["stop_reason"] == "max_iterations"
    assert tpo["iterations"] == 2
    assert tpo["best_scores"] == [e["best_score"] for e in expected["trajectory"]]
    # usage: every policy call the run made, as the policy reported it
    assert reply.usage.prompt_tokens == sum(p for p, _ in policy.usage) > 0
    assert reply.usage.completion_tokens == sum(c for _, c in policy.usage) > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    first_prompt = policy.calls[0]["messages"]
    assert [m.type for m in first_prompt] == ["system", "human", "ai", "human"]
    assert first_prompt[0].content == "You are terse."


async def test_top_level_fields_reach_the_policy(base_url: str, policy: TokenPolicy) -> None:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="unused")
    await client.chat.completions.create(
        model="tpo-bon",
        messages=CONVERSATION,
        temperature=0.3,
        top_p=0.5,
        max_completion_tokens=17,
        seed=11,
    )
    (call,) = policy.calls  # best-of-N: one request with n=N
    assert call["kwargs"] == {
        "temperature": 0.3,
        "top_p": 0.5,
        "max_tokens": 17,
        "seed": 11,
        "n": 2,
    }


async def test_async_client_n_choices_are_the_best_distinct(base_url: str) -> None:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="unused")
    reply = await client.chat.completions.create(
        model="tpo", messages=CONVERSATION, n=2, extra_body={"tpo": SETTINGS}
    )
    expected = await direct_run(SETTINGS)
    texts = [c.message.content for c in reply.choices]
    assert [c.index for c in reply.choices] == [0, 1] and len(set(texts)) == 2
    assert texts[0] == expected["response"]
    runner_up = max(
        (c for c in expected["candidates"] if c["text"] != texts[0]), key=lambda c: c["score"]
    )
    assert reply.model_extra["tpo"]["choice_scores"] == [expected["score"], runner_up["score"]]


async def test_async_streaming_assembles_the_reply(base_url: str) -> None:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="unused")
    stream = await client.chat.completions.create(
        model="tpo",
        messages=CONVERSATION,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"tpo": {"mode": "revision"}},
    )
    chunks = [c async for c in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    tpo = chunks[-1].model_extra["tpo"]
    assert tpo["mode"] == "revision"
    assert tpo["score"] == float(len(text)) and text  # the length reward scored this text
    assert chunks[-1].usage.completion_tokens > 0 and chunks[-1].choices == []


def test_sync_streaming(base_url: str) -> None:
    client = openai.OpenAI(base_url=base_url, api_key="unused")
    with client.chat.completions.create(
        model="tpo", messages=CONVERSATION, stream=True, n=2
    ) as stream:
        chunks = list(stream)
    texts = [
        "".join(
            c.choices[0].delta.content or ""
            for c in chunks
            if c.choices and c.choices[0].index == i
        )
        for i in (0, 1)
    ]
    assert texts[0] and texts[1] and texts[0] != texts[1]
    assert chunks[-1].model_extra["tpo"]["choice_scores"] == [float(len(t)) for t in texts]


BAD_REQUESTS = [
    ({"extra_body": {"tpo": {"num_samples": 0}}}, "tpo.num_samples"),
    ({"extra_body": {"tpo": {"samples": 3}}}, "tpo.samples"),
    ({"extra_body": {"tpo": {"mode": "fast"}}}, "tpo.mode"),
    ({"extra_body": {"tpo": {"review_gradient": True}}}, "tpo.review_gradient"),
    ({"extra_body": {"tpo": {"score_threshold": "high"}}}, "tpo.score_threshold"),
    ({"extra_body": {"tpo": 3}}, "tpo"),
    ({"extra_body": {"best_of": 3}}, "best_of"),
    ({"temperature": -1}, "temperature"),
    ({"top_p": 1.5}, "top_p"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_tokens": 10, "max_completion_tokens": 20}, "max_completion_tokens"),
    ({"n": 0}, "n"),
    ({"n": 7}, "n"),  # N=2, D=1: at most 4 candidates
    ({"model": "gpt-4o"}, "model"),
    ({"model": "tpo-bon", "extra_body": {"tpo": {"mode": "tpo"}}}, "tpo.mode"),
    ({"messages": []}, "messages"),
    (
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]},
        "messages",
    ),
    ({"messages": [{"role": "tool", "content": "42", "tool_call_id": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": "  "}]}, "messages[0].content"),
    (
        {
            "messages": [
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}
            ]
        },
        "messages[0].content[0]",
    ),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}, "tools"),
    ({"logprobs": True}, "logprobs"),
]


@pytest.mark.parametrize(("kwargs", "param"), BAD_REQUESTS, ids=[p for _, p in BAD_REQUESTS])
def test_bad_request_names_the_field(
    base_url: str, policy: TokenPolicy, kwargs: dict, param: str
) -> None:
    client = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0)
    request = {"model": "tpo", "messages": CONVERSATION, **kwargs}
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(**request)
    assert caught.value.status_code == 400
    assert caught.value.param == param and param in caught.value.message
    assert caught.value.type == "invalid_request_error"
    assert policy.calls == []  # rejected before any model call


def test_invalid_json_is_a_400(base_url: str) -> None:
    r = httpx.post(f"{base_url}/chat/completions", content=b"{not json", timeout=10)
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]


def test_models_lists_the_pipelines(base_url: str) -> None:
    client = openai.OpenAI(base_url=base_url, api_key="unused")
    assert [m.id for m in client.models.list()] == ["tpo", "tpo-revision", "tpo-bon"]
    assert client.models.retrieve("tpo-bon").owned_by == "langgraph-tpo"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")


def test_chat_openai_uses_the_endpoint_as_its_model(base_url: str) -> None:
    model = ChatOpenAI(
        base_url=base_url, api_key="unused", model="tpo", extra_body={"tpo": SETTINGS}
    )
    reply = model.invoke([("system", "You are terse."), ("human", "How do I clean oak?")])
    assert reply.content and reply.usage_metadata["input_tokens"] > 0
    streamed = "".join(chunk.content for chunk in model.stream("Name a color."))
    assert streamed
    assert [r.content for r in model.batch(["Say hi.", "Say bye."])] != ["", ""]


def test_raw_sse_stream_has_progress_comments_then_chunks_then_done(base_url: str) -> None:
    body = {"model": "tpo", "messages": CONVERSATION, "stream": True, "tpo": SETTINGS}
    with httpx.stream("POST", f"{base_url}/chat/completions", json=body, timeout=30) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in r.iter_lines() if line]
    comments = [line for line in lines if line.startswith(":")]
    data = [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]
    assert lines[0].startswith(": tpo run chatcmpl-")
    assert any(": iteration 0 best_score=" in c for c in comments)
    assert any(
        ": iteration 2 best_score=" in c and "stop_reason=max_iterations" in c for c in comments
    )
    assert any(c == ": node textual_gradient done" for c in comments)
    first_data = lines.index(next(line for line in lines if line.startswith("data: ")))
    assert all(line.startswith(":") for line in lines[:first_data])  # progress comes first
    assert all(line.startswith("data: ") for line in lines[first_data:])  # then the reply
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert float(len(text)) == chunks[-1]["tpo"]["score"]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_api_key_is_required_when_set(policy: TokenPolicy) -> None:
    app = create_app(policy, length_reward(), config=SMALL, api_key="s3cret-server-key")
    with serving(app) as url:
        wrong = openai.OpenAI(base_url=url, api_key="wrong-key-123", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as caught:
            wrong.chat.completions.create(model="tpo", messages=CONVERSATION)
        assert caught.value.status_code == 401 and "wrong-key-123" not in str(caught.value.body)
        with pytest.raises(openai.AuthenticationError):
            wrong.models.list()
        assert httpx.get(f"{url}/models").status_code == 401
        right = openai.OpenAI(base_url=url, api_key="s3cret-server-key")
        assert right.chat.completions.create(model="tpo", messages=CONVERSATION).choices
    assert len(policy.calls) > 0


def test_api_key_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TPO_SERVER_API_KEY", "env-key-456")
    with serving(create_app(TokenPolicy(), length_reward(), config=SMALL)) as url:
        r = httpx.post(f"{url}/chat/completions", json={"model": "tpo", "messages": CONVERSATION})
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        ok = httpx.post(
            f"{url}/chat/completions",
            json={"model": "tpo", "messages": CONVERSATION},
            headers={"Authorization": "Bearer env-key-456"},
            timeout=30,
        )
        assert ok.status_code == 200


def wait_until(check, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def post_in_thread(url: str, request: dict, results: list) -> threading.Thread:
    """POST ``request`` from a thread; its httpx response is appended to ``results``."""
    worker = threading.Thread(
        target=lambda: results.append(
            httpx.post(f"{url}/chat/completions", json=request, timeout=30)
        )
    )
    worker.start()
    return worker



def gated_app(**options: Any) -> tuple[GatedPolicy, Any]:
    """A policy that waits for its gate, and an app serving it with ``options``."""
    policy = GatedPolicy()
    return policy, create_app(policy, length_reward(), config=SMALL, **options)

def test_beyond_max_concurrency_a_request_waits_in_the_queue_and_one_more_is_429() -> None:
    policy, app = gated_app(max_concurrency=1, max_queue=1)
    slots, request = app.state.tpo.slots, {"model": "tpo", "messages": CONVERSATION}
    with serving(app) as url:
        first: list = []
        second: list = []
        workers = [post_in_thread(url, request, first)]
        wait_until(lambda: policy.started)  # the first request runs
        workers.append(post_in_thread(url, request, second))
        wait_until(lambda: slots.waiting == 1)  # the second waits for its slot
        started = time.monotonic()
        busy = httpx.post(f"{url}/chat/completions", json=request, timeout=30)
        assert time.monotonic() - started < 2  # refused at once, not after a wait
        assert busy.status_code == 429 and int(busy.headers["retry-after"]) >= 1
        error = busy.json()["error"]
        assert error["type"] == "rate_limit_error" and "max_queue 1" in error["message"]
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(**request)
        assert len(policy.started) == 1 and not second  # still waiting, no model call
        policy.gate.set()
        for worker in workers:
            worker.join(30)
        assert first[0].status_code == 200 and second[0].status_code == 200
        assert second[0].json()["choices"][0]["message"]["content"]
        assert slots.active == 0 and slots.waiting == 0


def test_a_queued_request_past_its_wait_is_429() -> None:
    policy, app = gated_app(max_concurrency=1, max_queue=4, queue_timeout=0.3)
    with serving(app) as url:
        request = {"model": "tpo", "messages": CONVERSATION}
        first: list = []
        worker = post_in_thread(url, request, first)
        wait_until(lambda: policy.started)
        started = time.monotonic()
        late = httpx.post(f"{url}/chat/completions", json=request, timeout=30)
        waited = time.monotonic() - started
        assert late.status_code == 429 and 0.3 <= waited < 3
        assert "waited 0.3 s for a slot" in late.json()["error"]["message"]
        assert app.state.tpo.slots.waiting == 0
        policy.gate.set()
        worker.join(30)
        assert first[0].status_code == 200 and len(policy.started) > 1


def test_a_client_that_leaves_the_queue_frees_its_place() -> None:
    policy, app = gated_app(max_concurrency=1, max_queue=1)
    slots, request = app.state.tpo.slots, {"model": "tpo", "messages": CONVERSATION}
    with serving(app) as url:
        first: list = []
        worker = post_in_thread(url, request, first)
        wait_until(lambda: policy.started)
        with pytest.raises(httpx.ReadTimeout):  # queued, then the client hangs up
            httpx.post(f"{url}/chat/completions", json=request, timeout=httpx.Timeout(10, read=0.5))
        wait_until(lambda: slots.waiting == 0)  # its place is free again
        second: list = []
        workers = [worker, post_in_thread(url, request, second)]
        wait_until(lambda: slots.waiting == 1)  # so another request may wait
        policy.gate.set()
        for thread in workers:
            thread.join(30)
        assert first[0].status_code == 200 and second[0].status_code == 200
        assert slots.active == 0


def test_queue_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="max_queue"):
        create_app(TokenPolicy(), length_reward(), max_queue=-1)
    with pytest.raises(ConfigError, match="queue_timeout"):
        create_app(TokenPolicy(), length_reward(), queue_timeout=0)


def test_stop_goes_to_sampling_and_cuts_every_answer(base_url: str, policy: TokenPolicy) -> None:
    client = openai.OpenAI(base_url=base_url, api_key="unused")
    reply = client.chat.completions.create(
        model="tpo", messages=CONVERSATION, stop=["wer"], n=3, extra_body={"tpo": SETTINGS}
    )
    # TokenPolicy answers "answer i" to samples and "improved answer r.i" to updates
    texts = [c.message.content for c in reply.choices]
    assert texts and all("wer" not in t and t.endswith("ans") for t in texts)
    assert {c.finish_reason for c in reply.choices} == {"stop"}
    assert reply.model_extra["tpo"]["choice_scores"] == [float(len(t)) for t in texts]
    kinds = {kind: stop for kind, stop in policy.stops}
    assert kinds["sample"] == ["wer"]  # sampling gets the stop strings ...
    assert kinds["loss"] is None and kinds["gradient"] is None and kinds["update"] is None
    streamed = client.chat.completions.create(
        model="tpo-bon", messages=CONVERSATION, stop="swer", stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == "an"


def test_chat_openai_stop(base_url: str, policy: TokenPolicy) -> None:
    model = ChatOpenAI(base_url=base_url, api_key="unused", model="tpo", stop=["swer"])
    assert model.invoke("Name a color.").content in ("an", "improved an")
    assert model.invoke("Name a color.", stop=["prov"]).content in ("answer 0", "answer 1", "im")
    assert "".join(c.content for c in model.stream("Name a color.")).endswith("an")


def test_finish_reason_is_length_when_the_answer_was_cut_at_max_tokens() -> None:
    policy = TokenPolicy(finish="length")
    with serving(create_app(policy, length_reward(), config=SMALL, retry=None)) as url:
        client = openai.OpenAI(base_url=url, api_key="unused")
        reply = client.chat.completions.create(model="tpo", messages=CONVERSATION, n=2)
        assert [c.finish_reason for c in reply.choices] == ["length", "length"]
        # cut at a stop string instead: it is whole, so "stop"
        cut = client.chat.completions.create(model="tpo-bon", messages=CONVERSATION, stop=" ")
        assert cut.choices[0].finish_reason == "stop" and cut.choices[0].message.content == "answer"
        stream = client.chat.completions.create(model="tpo", messages=CONVERSATION, stream=True)
        finishes = [c.choices[0].finish_reason for c in stream if c.choices]
        assert finishes[-1] == "length"
        chat = ChatOpenAI(base_url=url, api_key="unused", model="tpo-bon")
        assert chat.invoke("Hi").response_metadata["finish_reason"] == "length"


async def test_concurrent_requests_run_concurrently() -> None:
    policy, app = gated_app(max_concurrency=3)
    with serving(app) as url:
        client = openai.AsyncOpenAI(base_url=url, api_key="unused", max_retries=0)
        tasks = [
            asyncio.ensure_future(
                client.chat.completions.create(model="tpo-bon", messages=CONVERSATION)
            )
            for _ in range(3)
        ]
        deadline = time.monotonic() + 10
        while len(policy.started) < 3:  # all three are inside the policy at once
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        policy.gate.set()
        replies = await asyncio.gather(*tasks)
    assert all(r.choices[0].message.content for r in replies)


@pytest.mark.parametrize("stream", [False, True])
def test_client_disconnect_cancels_the_run(stream: bool) -> None:
    policy, app = gated_app(max_concurrency=1)
    with serving(app) as url:
        body = {"model": "tpo", "messages": CONVERSATION, "stream": stream}
        lines: list[str] = []
        with (
            httpx.Client(timeout=httpx.Timeout(10, read=0.5)) as client,
            pytest.raises(httpx.ReadTimeout),  # the client gives up and hangs up
        ):
            if stream:
                with client.stream("POST", f"{url}/chat/completions", json=body) as r:
                    lines.extend(r.iter_lines())
            else:
                client.post(f"{url}/chat/completions", json=body)
        assert not stream or lines[0].startswith(": tpo run")  # the stream had begun
        wait_until(lambda: policy.cancelled)  # the policy call in flight was cancelled
        assert policy.cancelled == [0] and not policy.gate.is_set()
        wait_until(lambda: app.state.tpo.active == 0)  # its slot is free again
        time.sleep(0.3)
        assert len(policy.started) == 1  # the run did not go on


def dead_policy_app(**kwargs):
    from langgraph_tpo.backends.servers.vllm_server import vllm_chat_model
    from testsupport.servers import free_port

    dead = f"http://127.0.0.1:{free_port()}/v1"
    policy = vllm_chat_model(dead, "smollm2", api_key="sk-policy-secret-0123456789")
    return create_app(policy, length_reward(), config=SMALL, retry=None, **kwargs), dead


def test_policy_server_down_is_503_naming_it_without_the_key() -> None:
    app, dead = dead_policy_app()
    with serving(app) as url:
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
        with pytest.raises(openai.InternalServerError) as caught:
            client.chat.completions.create(model="tpo", messages=CONVERSATION)
        error = caught.value
        assert error.status_code == 503 and error.code == "policy_unavailable"
        assert "policy backend unavailable" in error.message and dead in error.message
        raw = error.response.text
        assert "sk-policy-secret" not in raw and "Traceback" not in raw
        with (
            client.chat.completions.create(
                model="tpo", messages=CONVERSATION, stream=True
            ) as stream,
            pytest.raises(openai.APIError) as streamed,
        ):
            list(stream)
        assert "policy backend unavailable" in str(streamed.value)
        assert "sk-policy-secret" not in str(streamed.value)


class BrokenReward:
    async def ascore_batch(self, pairs):
        raise ValueError("reward head exploded")


def test_reward_failure_is_502_naming_the_reward() -> None:
    app = create_app(TokenPolicy(), BrokenReward(), config=SMALL, retry=None)
    with serving(app) as url:
        r = httpx.post(
            f"{url}/chat/completions", json={"model": "tpo", "messages": CONVERSATION}, timeout=30
        )
    error = r.json()["error"]
    assert r.status_code == 502 and error["code"] == "reward_error"
    assert "reward" in error["message"] and "exploded" in error["message"]
    assert "Traceback" not in r.text


def test_backends_named_by_settings_are_built_on_first_use() -> None:
    from langgraph_tpo.backends.factory import BackendSettings

    missing = "/nonexistent/policy.gguf"
    app = create_app(backends=BackendSettings(policy_path=missing), retry=None)
    assert app.state.tpo.defaults == TPOConfig()  # a named model: the paper's defaults
    with serving(app) as url:
        r = httpx.post(f"{url}/chat/completions", json={"model": "tpo", "messages": CONVERSATION},
                       timeout=60)  # fmt: skip
    assert r.status_code == 503 and missing in r.json()["error"]["message"]


def test_a_slow_run_streams_keep_alive_comments() -> None:
    policy, app = gated_app(keepalive_s=0.05)
    with serving(app) as url:
        threading.Timer(0.6, policy.gate.set).start()  # the first policy call takes 0.6 s
        body = {"model": "tpo-bon", "messages": CONVERSATION, "stream": True}
        with httpx.stream("POST", f"{url}/chat/completions", json=body, timeout=30) as r:
            lines = [line for line in r.iter_lines() if line]
    alive = lines.index(": keep-alive")
    assert lines.count(": keep-alive") >= 3 and lines[-1] == "data: [DONE]"
    assert alive < lines.index(": node sample done")  # sent while the policy was working


def test_progress_comments_are_sent_as_the_run_goes() -> None:
    # the critique waits until the client has seen iteration 0's line: only a stream that
    # sends each line when it happens (not at the next keep-alive) gets there
    policy = GatedPolicy(ungated={"sample"})
    app = create_app(policy, length_reward(), config=SMALL, keepalive_s=60)
    with serving(app) as url:
        body = {"model": "tpo", "messages": CONVERSATION, "stream": True}
        lines = []
        with httpx.stream(
            "POST", f"{url}/chat/completions", json=body, timeout=httpx.Timeout(30, read=5)
        ) as r:
            for line in r.iter_lines():
                lines.append(line)
                if line.startswith(": iteration 0 best_score="):
                    assert not policy.gate.is_set() and len(policy.started) <= 2
                    policy.gate.set()
    assert policy.gate.is_set() and lines[-2:] == ["data: [DONE]", ""]


def test_the_app_runs_the_prompt_set_it_was_given() -> None:
    policy = TokenPolicy()
    app = create_app(
        policy, length_reward(), config=SMALL, retry=None, prompts=marked_prompt_set("MARK-7")
    )
    with serving(app) as url:
        reply = openai.OpenAI(base_url=url, api_key="unused").chat.completions.create(
            model="tpo", messages=[{"role": "user", "content": "Name a color."}]
        )
    assert reply.choices[0].message.content
    samples = [c["messages"] for c in policy.calls if c["kind"] == "sample"]
    assert samples and all("MARK-7" in str(m[0].content) for m in samples)
    assert all(
        "MARK-7" not in str(c["messages"][0].content) for c in policy.calls if c["kind"] == "update"
    )


def test_an_unknown_prompt_set_fails_when_the_app_is_made() -> None:
    with pytest.raises(ConfigError, match="unknown prompt set 'papr'"):
        create_app(config=SMALL, backends=BackendSettings(), prompts="papr")


def test_budgets_per_request_and_as_server_defaults(base_url: str) -> None:
    client = openai.OpenAI(base_url=base_url, api_key="unused")
    budget = {"max_iterations": 3, "max_total_tokens": 1}
    reply = client.chat.completions.create(
        model="tpo", messages=CONVERSATION, extra_body={"tpo": budget}
    )
    assert reply.model_extra["tpo"]["stop_reason"] == "budget"
    assert reply.model_extra["tpo"]["iterations"] == 0 and reply.choices[0].message.content
    config = {**SMALL, "max_iterations": 3, "max_seconds": 1e-9}
    with serving(create_app(TokenPolicy(), length_reward(), config=config, retry=None)) as url:
        client = openai.OpenAI(base_url=url, api_key="unused")
        reply = client.chat.completions.create(model="tpo", messages=CONVERSATION)
    assert reply.model_extra["tpo"]["stop_reason"] == "budget"


def test_a_conversation_over_the_context_window_is_a_400_before_any_model_call(
    policy: TokenPolicy,
) -> None:
    config = {**SMALL, "context_window": 4096}
    with serving(create_app(policy, length_reward(), config=config, retry=None)) as url:
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
        messages = [{"role": "user", "content": "x " * 100_000}]
        start = time.monotonic()
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model="tpo", messages=messages)
        assert time.monotonic() - start < 2.0
        assert caught.value.code == "context_length_exceeded"
        assert re.search(r"is 200\d\d\d characters.*window of 4096", caught.value.message)
        short = [{"role": "user", "content": "How do I clean an oak table?"}]
        assert client.chat.completions.create(model="tpo", messages=short).choices
    assert len(policy.calls) == 4  # only the short request's: sample, loss, gradient, update
