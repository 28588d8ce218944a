"""``tpo serve`` in front of the real vLLM CPU servers, driven by real clients."""

from __future__ import annotations

import asyncio
import json
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import httpx
import openai
import pytest
from langchain_openai import ChatOpenAI

from tests.serve.helpers import ServeProcess, backend_flags, tpo_serve

if TYPE_CHECKING:
    from tests.integration.conftest import VLLMServers

pytestmark = pytest.mark.integration

USER = [{"role": "user", "content": "How do I take care of a wooden table?"}]
CHAT = {"handler": "/v1/chat/completions"}
LOAD_REQUESTS, LOAD_CONCURRENCY = 32, 8


@pytest.fixture(scope="module")
def served(
    vllm_servers: VLLMServers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServeProcess]:
    args = [*backend_flags(vllm_servers), "-n", "2", "-d", "1", "--max-tokens", "24"]
    args += ["--max-concurrency", str(LOAD_CONCURRENCY)]
    with tpo_serve(args, tmp_path_factory.mktemp("serve"), ready_s=120) as server:
        yield server


def settle(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:
        time.sleep(0.1)


def test_sync_client_usage_is_what_vllm_generated(
    served: ServeProcess, vllm_servers: VLLMServers
) -> None:
    client = openai.OpenAI(base_url=served.url, api_key="unused", max_retries=0)
    before = vllm_servers.policy_metrics()
    chat0 = vllm_servers.policy_metrics(CHAT).get("http_requests_total", 0.0)
    reply = client.chat.completions.create(
        model="tpo",
        messages=[{"role": "system", "content": "You are terse."}, *USER],
        seed=7,
        extra_body={"tpo": {"num_samples": 3, "max_iterations": 1}},
    )
    settle(lambda: vllm_servers.policy_metrics(CHAT)["http_requests_total"] >= chat0 + 4)
    after = vllm_servers.policy_metrics()
    generated = after["vllm:generation_tokens_total"] - before["vllm:generation_tokens_total"]
    assert vllm_servers.policy_metrics(CHAT)["http_requests_total"] - chat0 == 1 + 3 * 1
    assert reply.usage.completion_tokens == generated > 0
    assert reply.usage.prompt_tokens > 0
    assert reply.choices[0].message.content.strip()
    assert reply.choices[0].finish_reason in ("stop", "length")  # as vLLM ended the answer
    tpo = reply.model_extra["tpo"]
    assert tpo["num_samples"] == 3 and len(tpo["best_scores"]) == 2
    assert tpo["score"] == max(tpo["best_scores"])


async def test_async_client_n2_and_stream_match_the_plain_reply(served: ServeProcess) -> None:
    client = openai.AsyncOpenAI(base_url=served.url, api_key="unused", max_retries=0)
    request = {
        "model": "tpo-bon",
        "messages": USER,
        "seed": 3,
        "extra_body": {"tpo": {"num_samples": 3}},
    }
    plain = await client.chat.completions.create(**request, n=2)
    texts = [c.message.content for c in plain.choices]
    scores = plain.model_extra["tpo"]["choice_scores"]
    assert len(set(texts)) == 2 and scores[0] >= scores[1]
    stream = await client.chat.completions.create(**request, stream=True)
    streamed = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert streamed == texts[0]  # same seed, same samples, same best


def test_finish_reason_and_stop_on_vllm(served: ServeProcess) -> None:
    client = openai.OpenAI(base_url=served.url, api_key="unused", max_retries=0)
    cut = client.chat.completions.create(model="tpo-bon", messages=USER, max_tokens=2)
    assert cut.choices[0].finish_reason == "length"  # vLLM's finish reason, carried through
    stopped = client.chat.completions.create(
        model="tpo", messages=USER, stop=[".", "\n"], max_tokens=24
    )
    text = stopped.choices[0].message.content
    assert text.strip() and "." not in text and "\n" not in text
    model = ChatOpenAI(base_url=served.url, api_key="unused", model="tpo-bon", max_tokens=24)
    assert "." not in model.invoke(USER[0]["content"], stop=["."]).content


def test_chat_openai_and_sync_streaming(served: ServeProcess) -> None:
    model = ChatOpenAI(base_url=served.url, api_key="unused", model="tpo", max_tokens=16)
    reply = model.invoke([("system", "Answer in one line."), ("human", "Name a prime.")])
    assert reply.content.strip() and reply.usage_metadata["output_tokens"] > 0
    assert "".join(c.content for c in model.stream("Name a color.")).strip()


def test_raw_sse_over_vllm(served: ServeProcess) -> None:
    body = {"model": "tpo", "messages": USER, "stream": True, "max_tokens": 16}
    with httpx.stream("POST", f"{served.url}/chat/completions", json=body, timeout=300) as r:
        lines = [line for line in r.iter_lines() if line]
    assert any(line.startswith(": iteration 1 best_score=") for line in lines)
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in lines if line.startswith("data: {")]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks).strip()
    assert chunks[-1]["tpo"]["iterations"] == 1


def test_disconnect_stops_the_generation_on_vllm(
    served: ServeProcess, vllm_servers: VLLMServers
) -> None:
    def metric(name: str) -> float:
        return vllm_servers.policy_metrics().get(name, 0.0)

    # a long, high-temperature generation: a minute or more of work if it were left to finish
    body = {"model": "tpo-bon", "messages": USER, "max_tokens": 1500, "temperature": 2.0,
            "top_p": 1.0, "tpo": {"num_samples": 2}}  # fmt: skip
    outcome: list[BaseException] = []

    def ask_then_give_up() -> None:
        with httpx.Client(timeout=httpx.Timeout(30, read=6.0)) as client:
            try:
                client.post(f"{served.url}/chat/completions", json=body)
            except httpx.ReadTimeout as exc:  # the client gives up and hangs up
                outcome.append(exc)

    client = threading.Thread(target=ask_then_give_up)
    client.start()
    settle(lambda: metric("vllm:num_requests_running") >= 1, timeout=6)
    assert metric("vllm:num_requests_running") >= 1  # vLLM is generating for this run
    client.join(30)
    assert outcome, "the request finished before the client hung up"
    hung_up = time.monotonic()
    settle(lambda: metric("vllm:num_requests_running") == 0, timeout=10)
    assert metric("vllm:num_requests_running") == 0, "vLLM kept generating after the disconnect"
    stopped = time.monotonic() - hung_up
    tokens = metric("vllm:generation_tokens_total")
    time.sleep(2)
    assert metric("vllm:generation_tokens_total") == tokens  # nothing more was generated
    print(f"\nvLLM stopped generating {stopped:.1f}s after the client disconnected")


@pytest.mark.slow
async def test_load_32_requests_at_concurrency_8(
    served: ServeProcess, vllm_servers: VLLMServers
) -> None:
    client = openai.AsyncOpenAI(base_url=served.url, api_key="unused", max_retries=0, timeout=600)
    gate = asyncio.Semaphore(LOAD_CONCURRENCY)
    chat0 = vllm_servers.policy_metrics(CHAT).get("http_requests_total", 0.0)

    async def one(i: int) -> tuple[str, str, float]:
        async with gate:
            started = time.monotonic()
            reply = await client.chat.completions.create(
                model="tpo",
                messages=[{"role": "user", "content": f"Give me tip number {i} for a tidy desk."}],
                max_tokens=16,
            )
            return reply.id, reply.choices[0].message.content, time.monotonic() - started

    started = time.monotonic()
    results = await asyncio.gather(*(one(i) for i in range(LOAD_REQUESTS)))
    wall = time.monotonic() - started
    ids = [r[0] for r in results]
    assert len(results) == LOAD_REQUESTS and len(set(ids)) == LOAD_REQUESTS  # each answered once
    assert all(text.strip() for _, text, _ in results)
    settle(lambda: vllm_servers.policy_metrics(CHAT)["http_requests_total"] >= chat0 + 128)
    # N=2, D=1: 1 + 3 policy requests per run, none lost or repeated
    assert vllm_servers.policy_metrics(CHAT)["http_requests_total"] - chat0 == LOAD_REQUESTS * 4
    log = served.log()
    assert log.count('POST /v1/chat/completions HTTP/1.1" 200') >= LOAD_REQUESTS
    assert '" 429' not in log and '" 50' not in log
    latencies = sorted(r[2] for r in results)
    print(
        f"\nload: {LOAD_REQUESTS} requests at concurrency {LOAD_CONCURRENCY}: wall {wall:.1f}s, "
        f"{LOAD_REQUESTS / wall:.2f} req/s, latency p50 {statistics.median(latencies):.1f}s "
        f"p95 {latencies[int(0.95 * len(latencies)) - 1]:.1f}s max {latencies[-1]:.1f}s"
    )
