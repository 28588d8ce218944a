"""``tpo eval`` over HTTP interrupted by SIGINT, SIGTERM or a crash (SIGKILL, and a line torn
in the middle of its write): the results file stays valid JSONL and a rerun finishes the
rest, with no model work for the prompts already done."""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from testsupport.interrupts import interrupt_after

from .conftest import POLICY_MODEL, questions, read_jsonl, spawn, write_prompts
from .stub import StubServer

COUNT = 16
SLOW_CHAT = {"faults": [{"path": "chat", "action": "delay", "seconds": 0.15, "times": None}]}


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
            "--policy-url", policy.openai_base_url, "--policy-model", POLICY_MODEL]  # fmt: skip

    interrupt_after(spawn(args), out, 3, sig)
    if sig == signal.SIGKILL:
        with out.open("ab") as handle:  # a crash in the middle of writing a line
            handle.write(b'{"key": "tpo/id/p99", "prompt": "torn')
    first = read_jsonl(out) if sig != signal.SIGKILL else _whole_lines(out)
    assert 3 <= len(first) < COUNT and len({x["id"] for x in first}) == len(first)

    policy.configure({})
    sampled = policy.count("chat", "sample")
    proc = spawn(args)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert f"skipped {len(first)} results" in err
    lines = read_jsonl(out)  # valid JSONL again: a torn last line is cut off
    assert lines[: len(first)] == first
    assert sorted(x["id"] for x in lines) == sorted(f"p{i}" for i in range(COUNT))
    rerun = [r["query"] for r in policy.requests("chat", "sample")][sampled:]
    missing = set(prompts) - {x["prompt"] for x in first}
    # each missing prompt is sampled once more, unless its run was in flight and had sampled
    # already: then it resumes from its checkpoint and asks only for the steps after sample
    resumed = re.search(r"resuming (\d+) runs in flight", err)
    assert set(rerun) <= missing and len(rerun) == len(set(rerun))
    assert len(rerun) >= len(missing) - (int(resumed[1]) if resumed else 0)


def _whole_lines(path: Path) -> list[dict[str, object]]:
    """The complete lines of a file whose last line was torn."""
    complete, _, torn = path.read_text(encoding="utf-8").rpartition("\n")
    assert torn.startswith('{"key"'), "only the last line may be incomplete"
    return [json.loads(line) for line in complete.splitlines()]
