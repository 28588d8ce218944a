"""A planted API key, given through the environment or ``--api-key``, is used (the stub
servers check it) but never written: not to results, trajectories, stdout/stderr, debug logs
or the SQLite checkpoint file."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from typer.testing import CliRunner

from langgraph_tpo import TPOError, create_tpo_graph
from langgraph_tpo.backends.factory import BackendSettings, build_policy, build_reward
from langgraph_tpo.backends.servers.vllm_server import VLLMServerReward
from langgraph_tpo.cli import app

from .conftest import (
    CLEAN_ENV,
    KEY,
    POLICY_MODEL,
    QUERY,
    QUICK,
    SMALL,
    Backends,
    cli_env,
    one_error_line,
    questions,
    read_jsonl,
    run_tpo,
    write_prompts,
)

OTHER_KEY = "sk-the-server-wants-another-key"
ECHO_ON_401 = {"api_key": OTHER_KEY, "echo_key": True}  # echoes the key it was sent


def files_bytes(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (checkpoint db, its -wal/-shm, results, logs)."""
    return {str(p): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def assert_key_used(backends: Backends, reward_too: bool = True) -> None:
    """The key did reach the servers: the test would prove nothing otherwise."""
    chats = backends.policy.requests("chat")
    assert chats and all(r["auth"] for r in chats)
    if reward_too:
        scores = backends.reward.requests("classify")
        assert scores and all(r["auth"] for r in scores)


def test_env_key_is_used_and_never_written_by_tpo_eval(backends: Backends, tmp_path: Path) -> None:
    backends.policy.configure({"api_key": KEY})
    backends.reward.configure({"api_key": KEY})
    data, out = write_prompts(tmp_path / "d.jsonl", questions(3)), tmp_path / "out" / "r.jsonl"
    env = cli_env(TPO_API_KEY=KEY, OPENAI_LOG="debug")  # the OpenAI client logs each request
    result = run_tpo(["eval", str(data), "-o", str(out), *backends.cli_args(),
                      "-n", "2", "-d", "1", "--max-tokens", "8"], env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert len(read_jsonl(out)) == 3
    assert_key_used(backends)
    assert KEY not in result.stdout + result.stderr
    assert all(KEY.encode() not in data for data in files_bytes(tmp_path / "out").values())


def test_flag_key_is_used_and_never_written_by_tpo_run(backends: Backends) -> None:
    """``tpo run --json`` with the LLM judge on the policy server (judge calls carry the
    key too); the whole final state, trajectory included, goes to stdout."""
    backends.policy.configure({"api_key": KEY})
    env = cli_env(OPENAI_LOG="debug")
    result = run_tpo(["run", QUERY, "--json", "--api-key", KEY, "--policy-url",
                      backends.policy.openai_base_url, "--policy-model", POLICY_MODEL,
                      "-n", "2", "-d", "1", "--max-tokens", "8"], env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["trajectory"] and out["stop_reason"] == "max_iterations"
    assert_key_used(backends, reward_too=False)
    assert backends.policy.count("chat", "judge") > 0
    assert KEY not in result.stdout + result.stderr


def test_flag_key_reaches_the_reward_server_too(
    reward_tokenizer: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("TPO_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    settings = BackendSettings(
        policy_url="http://127.0.0.1:1/v1", policy_model="m", reward_url="http://127.0.0.1:2",
        reward_model="r", reward_path=str(reward_tokenizer), api_key=KEY,
    )  # fmt: skip
    reward = build_reward(settings, build_policy(settings))
    assert isinstance(reward, VLLMServerReward) and reward.api_key == KEY


@pytest.mark.parametrize("victim", ["policy", "reward"])
def test_a_server_echoing_the_key_is_masked_in_cli_errors(
    backends: Backends, victim: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In-process (typer's runner): the same code path as the ``tpo`` script."""
    for name in CLEAN_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TPO_API_KEY", KEY)
    getattr(backends, victim).configure(ECHO_ON_401)
    args = ["run", QUERY, *backends.cli_args(), "-n", "2", "-d", "1", "--retries", "0"]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 1
    line = one_error_line(result.stderr)
    assert "401" in line and "***" in line and KEY not in result.output, line


async def _graph_run(
    backends: Backends, folder: Path, caplog: pytest.LogCaptureFixture
) -> dict[str, Any] | TPOError:
    """One run with the key given in code, a SQLite checkpoint in ``folder``, and every
    logger at DEBUG; returns the output, or the error it raised."""
    caplog.set_level(logging.DEBUG)
    folder.mkdir()
    async with AsyncSqliteSaver.from_conn_string(str(folder / "checkpoints.sqlite")) as saver:
        graph = create_tpo_graph(
            backends.chat_model(api_key=KEY),
            backends.reward_model(api_key=KEY),
            SMALL,
            checkpointer=saver,
            retry=QUICK,
        )
        try:
            return await graph.ainvoke({"query": QUERY}, {"configurable": {"thread_id": "k"}})
        except TPOError as exc:
            return exc


async def test_key_given_in_code_is_not_in_checkpoint_logs_or_output(
    backends: Backends, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backends.policy.configure({"api_key": KEY})
    backends.reward.configure({"api_key": KEY})
    out = await _graph_run(backends, tmp_path / "ck", caplog)
    assert isinstance(out, dict) and out["stop_reason"] == "max_iterations"
    assert_key_used(backends)
    assert KEY not in json.dumps(out, default=str)  # response, candidates, trajectory
    assert KEY not in caplog.text
    assert all(KEY.encode() not in data for data in files_bytes(tmp_path / "ck").values())


@pytest.mark.parametrize(
    "victim",
    [
        "policy",
        "reward",
    ],
)
async def test_key_echoed_by_a_server_is_not_in_the_error_or_checkpoint(
    backends: Backends, tmp_path: Path, caplog: pytest.LogCaptureFixture, victim: str
) -> None:
    getattr(backends, victim).configure(ECHO_ON_401)
    error = await _graph_run(backends, tmp_path / "ck", caplog)
    assert isinstance(error, TPOError) and "401" in str(error)
    assert KEY not in str(error) and KEY not in caplog.text
    assert all(KEY.encode() not in data for data in files_bytes(tmp_path / "ck").values())
