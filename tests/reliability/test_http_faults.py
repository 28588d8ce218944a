"""Timeouts, HTTP 5xx and HTTP 400 "context too long" from real HTTP servers.

Timeouts and 5xx are transient: retried with backoff within the budget, then reported with
``transient=True``. A prompt that does not fit the window is cut by the documented policy
(quoted responses, critique and suggestions to a quarter of ``max_context_tokens``; the
query never) and sent once more, else reported as ``ContextTooLongError``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest
from typer.testing import CliRunner

from langgraph_tpo import PolicyError, RewardError, TPOConfig, create_tpo_graph
from langgraph_tpo.backends.servers.vllm_server import VLLMServerReward, vllm_chat_model
from langgraph_tpo.cli import app
from langgraph_tpo.errors import ConfigError, ContextTooLongError, TPOError

from .conftest import CLEAN_ENV, QUERY, QUICK, SMALL, Backends, one_error_line, run_tpo

if TYPE_CHECKING:
    from tests.integration.conftest import VLLMServers

LONG_SAMPLES = {"sample": ["alpha " * 300, "beta " * 200]}  # chosen 300 words, rejected 200


def fault(path: str, action: str, times: int | None = 1, **extra: Any) -> dict[str, Any]:
    return {"faults": [{"path": path, "action": action, "times": times, **extra}]}


@pytest.mark.parametrize(
    "victim,config,timeout",
    [
        ("policy", fault("chat", "delay", kind="loss", seconds=3.0), 0.5),
        ("reward", fault("classify", "delay", skip=1, seconds=3.0), 0.5),
        ("policy", fault("chat", "status", kind="update", status=503), 10.0),
        ("reward", fault("classify", "status", status=500), 10.0),
        ("policy", fault("chat", "status", kind="gradient", status=502), 10.0),
    ],
    ids=["policy-timeout", "reward-timeout", "policy-503", "reward-500", "policy-502"],
)
async def test_one_transient_failure_is_retried_and_the_run_finishes(
    backends: Backends, victim: str, config: dict[str, Any], timeout: float
) -> None:
    getattr(backends, victim).configure(config)
    graph = create_tpo_graph(
        backends.chat_model(timeout=timeout),
        backends.reward_model(timeout=timeout),
        SMALL,
        retry=QUICK,
    )
    out = await graph.ainvoke({"query": QUERY})
    assert out["stop_reason"] == "max_iterations" and len(out["candidates"]) == 4
    path = "chat" if victim == "policy" else "classify"
    faulted = [r for r in getattr(backends, victim).requests(path) if r["fault"]]
    assert len(faulted) == 1  # the failed request, then one retry that succeeded
    assert backends.policy.count("chat", "sample") == 1  # only the failed node ran again


@pytest.mark.parametrize(
    "victim,config,error,message",
    [
        ("policy", fault("chat", "delay", None, kind="sample", seconds=2.0), PolicyError,
         "Timeout"),
        ("reward", fault("classify", "delay", None, seconds=2.0), RewardError,
         "did not answer within 0.5s"),
        ("policy", fault("chat", "status", None, kind="loss", status=503), PolicyError,
         "503"),
        ("reward", fault("classify", "status", None, status=503), RewardError,
         "answered HTTP 503"),
    ],
    ids=["policy-timeout", "reward-timeout", "policy-503", "reward-503"],
)  # fmt: skip
async def test_persistent_transient_failure_is_reported_after_the_budget(
    backends: Backends,
    victim: str,
    config: dict[str, Any],
    error: type[TPOError],
    message: str,
) -> None:
    server = getattr(backends, victim)
    server.configure(config)
    graph = create_tpo_graph(
        backends.chat_model(timeout=0.5), backends.reward_model(timeout=0.5), SMALL, retry=QUICK
    )
    started = time.monotonic()
    with pytest.raises(error, match=message) as info:
        await graph.ainvoke({"query": QUERY})
    assert info.value.transient
    assert time.monotonic() - started < 10
    path = "chat" if victim == "policy" else "classify"
    assert len([r for r in server.requests(path) if r["fault"]]) == QUICK.max_attempts


async def test_reward_http_400_is_reported_at_once_not_retried(backends: Backends) -> None:
    backends.reward.configure(fault("classify", "status", None, status=400))
    graph = create_tpo_graph(backends.chat_model(), backends.reward_model(), SMALL, retry=QUICK)
    with pytest.raises(RewardError, match="answered HTTP 400") as info:
        await graph.ainvoke({"query": QUERY})
    assert not info.value.transient and backends.reward.count("classify") == 1


def test_cli_persistent_503_is_one_line_after_the_retries(
    backends: Backends, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In-process (typer's runner): the code path of the ``tpo`` script."""
    for name in CLEAN_ENV:
        monkeypatch.delenv(name, raising=False)
    backends.policy.configure(fault("chat", "status", None, kind="loss", status=503))
    args = ["run", QUERY, *backends.cli_args(), "-n", "2", "-d", "1", "--retries", "1"]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 1
    line = one_error_line(result.stderr)
    assert "ChatOpenAI" in line and "failed" in line and "503" in line, line
    assert backends.policy.count("chat", "loss") == 2  # one retry, as --retries 1 asks


async def test_context_overflow_is_cut_and_retried_once(backends: Backends) -> None:
    """The loss, gradient and update prompts quoting 300- and 200-word responses overflow a
    3000-character window; cut to 100 tokens each they fit."""
    backends.policy.configure({"outputs": LONG_SAMPLES, "max_prompt_chars": 3000})
    config = SMALL.with_overrides({"max_context_tokens": 400})
    graph = create_tpo_graph(backends.chat_model(), backends.reward_model(), config, retry=QUICK)
    out = await graph.ainvoke({"query": QUERY})

    assert out["stop_reason"] == "max_iterations"
    for kind in ("loss", "gradient", "update"):
        first, second = backends.policy.requests("chat", kind)
        assert first["fault"] == "context" and second["fault"] is None
        assert second["chars"] < first["chars"]  # quoted responses were cut
    assert out["trajectory"][1]["textual_loss"]  # the loop went on after the retry


async def test_context_overflow_that_persists_is_reported(backends: Backends) -> None:
    backends.policy.configure({"outputs": LONG_SAMPLES, "max_prompt_chars": 700})
    config = SMALL.with_overrides({"max_context_tokens": 400})
    graph = create_tpo_graph(backends.chat_model(), backends.reward_model(), config, retry=QUICK)
    with pytest.raises(ContextTooLongError, match="after cutting quoted responses to 100 tokens"):
        await graph.ainvoke({"query": QUERY})
    assert backends.policy.count("chat", "loss") == 2  # cut and sent once more, not retried


# --- against the real vLLM policy server (max_model_len 8192) ---------------------------
# Only prompts the server refuses before computing anything: an 8k-token prefill takes
# minutes on two CPU cores. The "query fits, query plus critique does not" case is covered
# above with the stub, which answers with vLLM's own HTTP 400 message.


def _chat_requests(servers: VLLMServers) -> float:
    return servers.policy_metrics({"handler": "/v1/chat/completions"}).get(
        "http_requests_total", 0.0
    )


def _real_graph(servers: VLLMServers, config: TPOConfig) -> Any:
    policy = vllm_chat_model(servers.policy_url, servers.policy_model, timeout=300)
    reward = VLLMServerReward(
        servers.reward_url, servers.reward_model, tokenizer_path=servers.reward_tokenizer_path
    )
    return create_tpo_graph(policy, reward, config, retry=None)


@pytest.mark.integration
@pytest.mark.asyncio(loop_scope="session")
async def test_query_over_the_window_is_reported_before_the_loop(
    vllm_servers: VLLMServers,
) -> None:
    query = "word " * 9000
    before = _chat_requests(vllm_servers)
    with pytest.raises(ConfigError, match="context window of 8192 tokens") as info:
        await _real_graph(vllm_servers, SMALL).ainvoke({"query": query})
    assert not info.value.transient
    assert _chat_requests(vllm_servers) == before  # refused from /v1/models' max_model_len


@pytest.mark.integration
def test_cli_query_over_the_window_is_one_line(vllm_servers: VLLMServers) -> None:
    """``tpo run`` with the LLM judge on the real policy server: refused before any
    request, from the server's ``max_model_len``."""
    result = run_tpo(
        ["run", "-", "--policy-url", vllm_servers.policy_url, "--policy-model",
         vllm_servers.policy_model, "-n", "2", "-d", "1", "--max-tokens", "8", "--retries", "0"],
        stdin="word " * 9000,
    )  # fmt: skip
    assert result.returncode == 1
    line = one_error_line(result.stderr)
    assert "context window of 8192 tokens" in line and "max_tokens 8" in line, line
