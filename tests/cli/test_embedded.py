"""``tpo run`` on the embedded default: SmolLM2 in-process on CPU, judged by itself."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from .conftest import tpo_command

pytestmark = pytest.mark.slow


def test_run_on_the_embedded_default_with_tiny_settings() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TPO_")}
    args = ["run", "What is the capital of France?", "-n", "2", "-d", "1", "--max-tokens", "8"]
    proc = subprocess.run(
        [*tpo_command(), *args, "--seed", "1", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    state = json.loads(proc.stdout)
    assert isinstance(state["response"], str) and state["response"].strip()
    assert isinstance(state["score"], float)
    assert state["stop_reason"] in ("max_iterations", "score_threshold")
    assert [e["iteration"] for e in state["trajectory"]] == [0, 1][: len(state["trajectory"])]
    assert all(c["score"] <= state["score"] for c in state["candidates"])
    assert "iteration 0/1" in proc.stderr  # progress from the graph's custom events


def test_a_200k_character_query_is_refused_before_any_model_call() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TPO_")}
    args = ["run", "-", "-n", "2", "-d", "1", "--max-tokens", "64"]
    proc = subprocess.run(
        [*tpo_command(), *args], env=env, input="x " * 100_000, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "200" in proc.stderr and "context window of 8192 tokens" in proc.stderr, proc.stderr
