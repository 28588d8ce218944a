"""``tpo eval`` over HTTP interrupted by SIGINT, SIGTERM or a crash (SIGKILL, and a line torn
in the middle of its write): the results file stays valid JSONL and a rerun finishes the
rest, with no model work for the prompts already done."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import POLICY_MODEL, questions, read_jsonl, spawn, write_prompts
from .stub import StubServer

COUNT = 16
SLOW_CHAT = {"faults": [{"path": "chat", "action": "delay", "seconds": 0.15, "times": None}]}


def wait_for_lines(path: Path, count: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} did not reach {count} lines in {timeout}s")


@pytest.mark.parametrize(
    "sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["SIGINT", "SIGTERM", "SIGKILL"]
)
def test_interrupted_eval_keeps_valid_jsonl_and_the_rerun_finishes(
    stubs: Callable[..., StubServer], tmp_path: Path, sig: signal.Signals
) -> None:
    policy = stubs("policy", SLOW_CHAT)  # the LLM judge runs on the same server
    prompts = questions(COUNT)
    data, out = write_prompts(tmp_path / "d.jsonl", prompts), tmp_path / "r.jsonl"
    args = ["eval", str(data), "-o", str(out), "-c", "3", "-n", "2", "-d", "1",
            "--policy-url", policy.openai_url, "--policy-model", POLICY_MODEL]  # fmt: skip

    proc = spawn(args)
    try:
        wait_for_lines(out, 3)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
        with out.open("ab") as handle:  # a crash in the middle of writing a line
            handle.write(b'{"key": "tpo/id/p99", "prompt": "torn')
    else:
        assert proc.returncode == 128 + sig, err
        assert f"interrupted by {sig.name}" in err and "Traceback" not in err
    first = read_jsonl(out) if sig != signal.SIGKILL else _whole_lines(out)
    assert 3 <= len(first) < COUNT and len({x["id"] for x in first}) == len(first)

    policy.configure({})
    sampled = policy.count("chat", "sample")
    proc = spawn(args)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert f"skipped {len(first)} prompts" in err
    lines = read_jsonl(out)  # valid JSONL again: a torn last line is cut off
    assert lines[: len(first)] == first
    assert sorted(x["id"] for x in lines) == sorted(f"p{i}" for i in range(COUNT))
    rerun = [r["query"] for r in policy.requests("chat", "sample")][sampled:]
    assert sorted(rerun) == sorted(set(prompts) - {x["prompt"] for x in first})


def _whole_lines(path: Path) -> list[dict[str, object]]:
    """The complete lines of a file whose last line was torn."""
    complete, _, torn = path.read_text(encoding="utf-8").rpartition("\n")
    assert torn.startswith('{"key"'), "only the last line may be incomplete"
    return [json.loads(line) for line in complete.splitlines()]
