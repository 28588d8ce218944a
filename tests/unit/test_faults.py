"""Transient failures are retried within a budget; context overflows are cut and retried once."""

from __future__ import annotations

import httpx
import pytest
from langgraph.types import RetryPolicy

from langgraph_tpo import PolicyError, RewardError, TPOConfig, create_tpo_graph
from langgraph_tpo.errors import ContextTooLongError, is_context_too_long, is_transient
from langgraph_tpo.fakes import FakeBatchReward, FakeNPolicy

FAST = RetryPolicy(
    initial_interval=0.001,
    backoff_factor=1.0,
    max_attempts=3,
    jitter=False,
    retry_on=lambda e: getattr(e, "transient", False),
)
SMALL = TPOConfig(num_samples=2, max_iterations=1)


def response_error(status: int) -> httpx.HTTPStatusError:
    request = httpx.Request("POST", "http://127.0.0.1:1/v1/chat/completions")
    return httpx.HTTPStatusError(
        "boom", request=request, response=httpx.Response(status, request=request)
    )


@pytest.mark.parametrize(
    "exc,transient",
    [
        (ConnectionRefusedError(), True),
        (TimeoutError(), True),
        (response_error(503), True),
        (response_error(429), True),
        (response_error(400), False),
        (ValueError("x"), False),
    ],
)
def test_transient_classification(exc: Exception, transient: bool) -> None:
    assert is_transient(exc) is transient


def test_context_length_messages_are_recognised() -> None:
    vllm = ValueError(
        "This model's maximum context length is 2048 tokens. However, you requested 2300 tokens"
    )
    assert is_context_too_long(vllm) and not is_context_too_long(ValueError("bad seed"))


class Flaky(FakeNPolicy):
    """Fails ``failures`` times on its first update call, with the given exception."""

    failures: int = 2
    error: type[Exception] = ConnectionRefusedError

    def _draw(self, kind, messages, n, kwargs):
        if kind == "update" and self.failures > 0:
            self.failures -= 1
            raise self.error("server restarting")
        return super()._draw(kind, messages, n, kwargs)


def test_transient_policy_failures_are_retried_within_budget() -> None:
    policy = Flaky(failures=2)
    out = create_tpo_graph(policy, lambda q, r: float(len(r)), SMALL, retry=FAST).invoke(
        {"query": "q"}
    )
    assert out["stop_reason"] == "max_iterations"
    assert policy.count("update") == 2 and policy.count("sample") == 2  # sample not redone


def test_budget_exhausted_reports_a_transient_policy_error() -> None:
    policy = Flaky(failures=5)
    with pytest.raises(PolicyError, match="server restarting") as info:
        create_tpo_graph(policy, lambda q, r: 1.0, SMALL, retry=FAST).invoke({"query": "q"})
    assert info.value.transient


def test_non_transient_failures_are_not_retried() -> None:
    policy = Flaky(failures=1, error=ValueError)
    with pytest.raises(PolicyError):
        create_tpo_graph(policy, lambda q, r: 1.0, SMALL, retry=FAST).invoke({"query": "q"})
    assert policy.failures == 0  # one attempt only


def test_transient_reward_failure_is_retried() -> None:
    class FlakyReward(FakeBatchReward):
        fails = 1

        async def ascore_batch(self, pairs):
            if self.fails:
                self.fails -= 1
                raise httpx.ConnectError("connection refused")
            return await super().ascore_batch(pairs)

    reward = FlakyReward()
    out = create_tpo_graph(FakeNPolicy(), reward, SMALL, retry=FAST).invoke({"query": "q"})
    assert out["stop_reason"] == "max_iterations" and len(reward.batches) == 2


def test_reward_down_for_good_is_reported() -> None:
    def reward(query: str, response: str) -> float:
        raise ConnectionRefusedError("127.0.0.1:9 refused")

    with pytest.raises(RewardError, match="refused"):
        create_tpo_graph(FakeNPolicy(), reward, SMALL, retry=FAST).invoke({"query": "q"})


class SmallWindow(FakeNPolicy):
    """Rejects prompts longer than ``window`` characters like vLLM's HTTP 400."""

    window: int = 400

    def _draw(self, kind, messages, n, kwargs):
        size = sum(len(str(m.content)) for m in messages)
        if size > self.window:
            raise ValueError(
                f"This model's maximum context length is {self.window} tokens. "
                f"However, you requested {size} tokens"
            )
        return super()._draw(kind, messages, n, kwargs)


def long_answers(kind: str, call: int, index: int) -> str:
    if kind == "sample":
        return " ".join(["word"] * 300) + f" {index}"
    return "<improved_response>short</improved_response>" if kind == "update" else "ok"


def test_context_overflow_cuts_quoted_responses_and_retries_once() -> None:
    policy = SmallWindow(window=2800, responder=long_answers)
    out = create_tpo_graph(
        policy,
        lambda q, r: float(len(r)),
        TPOConfig(num_samples=2, max_iterations=1, max_context_tokens=400),
        retry=None,
    ).invoke({"query": "q"})
    assert out["trajectory"][1]["stop_reason"] == "max_iterations"
    assert policy.count("loss") == 1 and policy.count("update") == 2


def test_context_overflow_that_persists_is_reported() -> None:
    policy = SmallWindow(window=700, responder=long_answers)
    with pytest.raises(ContextTooLongError, match="after cutting quoted responses to 100"):
        create_tpo_graph(
            policy,
            lambda q, r: 1.0,
            TPOConfig(num_samples=2, max_iterations=1, max_context_tokens=400),
            retry=None,
        ).invoke({"query": "q"})
