"""Shared helpers of the CLI tests: the entry point on fake backends, datasets, results."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from langgraph_tpo.cli import app
from testsupport.fake_backends import fake_backend_env
from testsupport.interrupts import wait_for_lines

ROOT = Path(__file__).resolve().parents[2]
# backend settings that would be combined with (and conflict with) the fake factories
OTHER_BACKENDS = (
    "TPO_POLICY_URL", "TPO_POLICY_PATH", "TPO_REWARD_URL", "TPO_REWARD_PATH", "TPO_JUDGE",
    "TPO_API_KEY",
)  # fmt: skip


def tpo_command() -> list[str]:
    """The installed ``tpo`` script next to this interpreter, else ``python -m``."""
    script = Path(sys.executable).parent / "tpo"
    return [str(script)] if script.exists() else [sys.executable, "-m", "langgraph_tpo.cli"]


def spawn(args: Sequence[str], env: dict[str, str], **kwargs: Any) -> subprocess.Popen[str]:
    """Start ``tpo ARGS`` as a real process."""
    return subprocess.Popen(
        [*tpo_command(), *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def sigkill_after_requests(args: Sequence[str], env: dict[str, str], log: Path, count: int) -> None:
    """Run ``tpo ARGS`` with the fake models answering in 0.5 s and logging each request to
    ``log``; SIGKILL it once ``count`` requests are logged (their checkpoints written, the
    next requests half-way), and wait for it to end."""
    proc = spawn(args, {**env, "TPO_FAKE_DELAY": "0.5", "TPO_FAKE_LOG": str(log)})
    try:
        wait_for_lines(log, count)
        time.sleep(0.25)  # the nodes' checkpoints are written; the next requests are half-way
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    finally:
        proc.kill()


def refusals(*cases: tuple[list[str], str]) -> pytest.MarkDecorator:
    """Parametrizes a test over ``(args, message)``: arguments a command refuses and what
    its error must say (see :func:`assert_refused`); each case's id is its arguments."""
    ids = [" ".join(args) for args, _ in cases]
    return pytest.mark.parametrize(("args", "message"), cases, ids=ids)


def assert_refused(result: Any, message: str) -> None:
    """A refusal: exit code 1 and one line on stderr that says ``message``."""
    assert result.exit_code == 1, result.output
    assert message in result.stderr and result.stderr.count("\n") == 1, result.stderr


@pytest.fixture
def fake_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """Fake backends through the factory settings (``TPO_POLICY_FACTORY``,
    ``TPO_REWARD_FACTORY``) for in-process runs; returns the env for subprocesses too."""
    env = {**fake_backend_env(), "TPO_FAKE_LOG": str(tmp_path / "policy-calls.jsonl")}
    for name in OTHER_BACKENDS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("TPO_FAKE_DELAY", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def cli() -> CliRunner:
    return CliRunner()


def invoke(runner: CliRunner, args: Sequence[str], input: str | None = None) -> Any:
    """Run ``tpo ARGS`` in-process through the typer app."""
    return runner.invoke(app, list(args), input=input, catch_exceptions=False)


def policy_calls(path: Path) -> list[dict[str, Any]]:
    """The fake policy's request log (one JSON line per request)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every line of ``path`` as JSON; fails on a partial or invalid line."""
    text = path.read_text()
    assert text.endswith("\n"), "results file must end with a complete line"
    return [json.loads(line) for line in text.splitlines()]


def prompts(count: int) -> list[str]:
    return [f"Question {i}: how do I do thing number {i}?" for i in range(count)]


def prompt_list(path: Path, count: int) -> Path:
    """A dataset of ``count`` prompts as a JSON list of strings (the TPO repo's format)."""
    path.write_text(json.dumps(prompts(count), indent=2))
    return path


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path
