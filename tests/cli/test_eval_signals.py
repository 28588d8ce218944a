"""Kill ``tpo eval`` mid-run (SIGINT, SIGTERM, SIGKILL), then rerun: every prompt exactly
once, valid JSONL throughout, and no model work for the prompts already finished."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from langgraph_tpo.cli.eval_checkpoints import checkpoint_path
from testsupport.interrupts import interrupt_after

from .conftest import (
    invoke,
    policy_calls,
    prompt_list,
    prompts,
    read_jsonl,
    sigkill_after_requests,
    spawn,
    write_jsonl,
)

COUNT = 20


def dataset(tmp_path: Path, with_ids: bool) -> Path:
    """20 prompts: JSONL with ids (resume by id) or a JSON list (resume by prompt hash)."""
    if with_ids:
        return write_jsonl(
            tmp_path / "data.jsonl",
            [{"id": f"p{i}", "prompt": p} for i, p in enumerate(prompts(COUNT))],
        )
    data = prompt_list(tmp_path / "data.json", COUNT)
    return data


@pytest.mark.parametrize(
    "sig,with_ids",
    [(signal.SIGINT, True), (signal.SIGTERM, False), (signal.SIGKILL, True)],
    ids=["SIGINT", "SIGTERM", "SIGKILL"],
)
def test_kill_mid_run_then_rerun_resumes(
    cli: CliRunner,
    fake_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sig: signal.Signals,
    with_ids: bool,
) -> None:
    data, out = dataset(tmp_path, with_ids), tmp_path / "results.jsonl"
    args = ["eval", str(data), "-o", str(out), "-n", "2", "-d", "1", "-c", "3"]
    first_log = tmp_path / "first-run-calls.jsonl"
    proc = spawn(args, {**fake_env, "TPO_FAKE_DELAY": "0.1", "TPO_FAKE_LOG": str(first_log)})
    err = interrupt_after(proc, out, 3, sig)
    first = read_jsonl(out)  # whole lines only, even after SIGKILL
    assert 3 <= len(first) < COUNT
    assert len({x["prompt"] for x in first}) == len(first)
    if sig != signal.SIGKILL:
        assert f"{len(first)} of {COUNT} results" in err

    second_log = tmp_path / "second-run-calls.jsonl"
    monkeypatch.setenv("TPO_FAKE_LOG", str(second_log))
    result = invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert f"skipped {len(first)} results" in result.stderr
    lines = read_jsonl(out)
    assert lines[: len(first)] == first
    assert sorted(x["prompt"] for x in lines) == sorted(prompts(COUNT))  # each exactly once
    if with_ids:
        assert sorted(x["id"] for x in lines) == sorted(f"p{i}" for i in range(COUNT))
    rerun = [c["query"] for c in policy_calls(second_log) if c["kind"] == "sample"]
    assert sorted(rerun) == sorted(set(prompts(COUNT)) - {x["prompt"] for x in first})


def test_sigkill_mid_run_resumes_each_run_without_repeating_a_finished_call(
    cli: CliRunner, fake_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four runs in flight (N=2, D=2: seven policy requests each) are killed after their
    first two requests; the rerun makes only the five each still needs."""
    data = write_jsonl(
        tmp_path / "d.jsonl", [{"id": f"p{i}", "prompt": p} for i, p in enumerate(prompts(4))]
    )
    out = tmp_path / "results.jsonl"
    args = ["eval", str(data), "-o", str(out), "-n", "2", "-d", "2", "-c", "4"]
    first_log = tmp_path / "first-run-calls.jsonl"
    sigkill_after_requests(args, fake_env, first_log, 8)  # sample and textual_loss of every run
    assert not out.exists() or out.read_text() == ""  # every run was in flight
    first = policy_calls(first_log)
    assert len(first) == 8 and checkpoint_path(out).exists()

    second_log = tmp_path / "second-run-calls.jsonl"
    monkeypatch.setenv("TPO_FAKE_LOG", str(second_log))
    result = invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "resuming 4 runs in flight" in result.stderr
    second = policy_calls(second_log)
    assert [c["kind"] for c in second].count("sample") == 0
    assert len(first) + len(second) == 4 * 7  # no finished request made twice
    assert not checkpoint_path(out).exists()  # cleaned once every result is written

    monkeypatch.setenv("TPO_FAKE_LOG", str(tmp_path / "fresh-calls.jsonl"))
    fresh = tmp_path / "fresh.jsonl"
    assert invoke(cli, ["eval", str(data), "-o", str(fresh), *args[4:]]).exit_code == 0
    responses = {x["id"]: x["response"] for x in read_jsonl(out)}
    assert responses == {x["id"]: x["response"] for x in read_jsonl(fresh)}
