"""Errors that cannot heal are reported at once, whatever the retry budget.

The default budget (``DEFAULT_RETRY``: 6 attempts, backoff from 1 s) would spend 31 s in
backoff on an error it retried; each test gives the failure a few seconds. Only what can
heal is retried: connection refused or reset, timeouts, HTTP 408/429/5xx.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from langgraph_tpo import (
    BackendUnavailableError,
    PolicyError,
    RewardError,
    create_tpo_graph,
)
from langgraph_tpo.backends.inprocess.transformers_chat import TransformersChatModel
from langgraph_tpo.backends.rewards.transformers_reward import TransformersReward
from langgraph_tpo.cli import app
from langgraph_tpo.errors import is_transient
from langgraph_tpo.fakes import FakeNPolicy
from langgraph_tpo.graph.builder import DEFAULT_RETRY

from .conftest import CLEAN_ENV, SMALL, Backends, one_error_line

FEW_SECONDS = 5.0  # an error retried by DEFAULT_RETRY takes over 30 s


def fault(path: str, status: int) -> dict[str, Any]:
    return {"faults": [{"path": path, "action": "status", "times": None, "status": status}]}


def timed_cli(args: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[Any, float]:
    for name in CLEAN_ENV:
        monkeypatch.delenv(name, raising=False)
    started = time.monotonic()
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    return result, time.monotonic() - started


def unloadable_model_dir(directory: Path) -> Path:
    """Files that pass the checks but do not load; torch and transformers imported first,
    so the clock measures the failure, not the imports."""
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: F401

    (directory / "config.json").write_text('{"model_type": "not-a-model"}')
    (directory / "model.safetensors").write_bytes(b"")
    (directory / "tokenizer.json").write_text("{}")
    return directory


def weights_without_config(directory: Path) -> Path:
    directory.mkdir()
    (directory / "model.safetensors").write_bytes(b"")
    return directory


@pytest.mark.parametrize(
    "flag,expected",
    [
        ("--policy-path", "path does not exist"),
        ("--reward-path", "path does not exist"),
    ],
)
def test_cli_missing_model_path_fails_at_once(
    flag: str, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "no-such-model"
    result, elapsed = timed_cli(["run", "q", flag, str(missing)], monkeypatch)
    assert result.exit_code == 1
    line = one_error_line(result.stderr)
    assert expected in line and str(missing) in line, line
    assert "repo" not in line.lower() and "tokenizer" not in line.lower(), line
    assert elapsed < FEW_SECONDS


def test_cli_directory_without_model_files_names_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = weights_without_config(tmp_path / "half-copied")
    result, elapsed = timed_cli(["run", "q", "--policy-path", str(folder)], monkeypatch)
    assert result.exit_code == 1
    line = one_error_line(result.stderr)
    assert f"no model files in {folder} (expected config.json and weights, or a .gguf)" in line
    assert elapsed < FEW_SECONDS


def test_model_paths_are_checked_when_the_backend_is_built(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(BackendUnavailableError, match="no model weights in") as info:
        TransformersChatModel(model_path=str(tmp_path))
    assert not is_transient(info.value)
    with pytest.raises(BackendUnavailableError, match="path does not exist"):
        TransformersReward(str(tmp_path / "missing"))
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(BackendUnavailableError, match="no tokenizer in"):
        TransformersReward(str(tmp_path))
    with pytest.raises(BackendUnavailableError, match="reward tokenizer .* path does not exist"):
        TransformersReward(str(tmp_path), tokenizer_path=str(tmp_path / "tok"))


def test_model_that_fails_to_load_in_a_node_is_not_retried(tmp_path: Path) -> None:
    """Files that look right but do not load: found only when the first node loads the
    model, and reported from there at once."""
    policy = TransformersChatModel(model_path=str(unloadable_model_dir(tmp_path)))
    graph = create_tpo_graph(policy, lambda q, r: 1.0, SMALL, retry=DEFAULT_RETRY)
    started = time.monotonic()
    with pytest.raises(PolicyError, match="could not load it") as info:
        graph.invoke({"query": "q"})
    assert not info.value.transient
    assert time.monotonic() - started < FEW_SECONDS


def test_reward_that_fails_to_load_in_a_node_is_not_retried(tmp_path: Path) -> None:
    reward = TransformersReward(str(unloadable_model_dir(tmp_path)))
    graph = create_tpo_graph(FakeNPolicy(), reward, SMALL, retry=DEFAULT_RETRY)
    started = time.monotonic()
    with pytest.raises(BackendUnavailableError, match="could not load reward model") as info:
        graph.invoke({"query": "q"})
    assert not info.value.transient
    assert time.monotonic() - started < FEW_SECONDS


@pytest.mark.parametrize(
    "victim,status",
    [("policy", 400), ("policy", 401), ("policy", 404), ("reward", 401), ("reward", 404)],
)
async def test_http_client_errors_are_reported_at_once(
    backends: Backends, victim: str, status: int
) -> None:
    path, error = ("chat", PolicyError) if victim == "policy" else ("classify", RewardError)
    server = backends.policy if victim == "policy" else backends.reward
    server.configure(fault(path, status))
    reward = backends.reward_model()
    await reward.tokenizer()  # loaded before the clock starts: the failure is timed, not that
    graph = create_tpo_graph(backends.chat_model(), reward, SMALL, retry=DEFAULT_RETRY)
    started = time.monotonic()
    with pytest.raises(error, match=str(status)) as info:
        await graph.ainvoke({"query": "q"})
    assert not info.value.transient
    assert time.monotonic() - started < FEW_SECONDS
    assert server.count(path) == 1


@pytest.mark.parametrize("status", [408, 429, 502, 503, 504])
def test_statuses_that_can_heal_stay_transient(status: int) -> None:
    import httpx

    request = httpx.Request("POST", "http://127.0.0.1:1/v1/chat/completions")
    error = httpx.HTTPStatusError(
        "x", request=request, response=httpx.Response(status, request=request)
    )
    assert is_transient(error)


def test_an_unavailable_backend_is_permanent_unless_its_cause_can_heal() -> None:
    assert not is_transient(BackendUnavailableError("no model files in /m"))
    try:
        raise BackendUnavailableError("hub download failed") from ConnectionResetError()
    except BackendUnavailableError as exc:
        assert is_transient(exc)
