"""``tpo eval --checkpoints auto|off|PATH`` and ``--checkpointer module:attr``: a run killed
with SIGKILL resumes from the store the user named, each thread is deleted from it once its
line is written, and bad values are refused before any model call."""

from __future__ import annotations

import importlib
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from langgraph_tpo.cli.eval_checkpoints import checkpoint_path

from .conftest import (
    invoke,
    policy_calls,
    prompts,
    read_jsonl,
    sigkill_after_requests,
    write_jsonl,
)

USER_SQLITE = "tests.cli.checkpointers:sqlite_from_env"
# the module as --checkpointer imports it (pytest imports this file's package as ``cli``)
checkpointers = importlib.import_module("tests.cli.checkpointers")


def dataset(tmp_path: Path, count: int) -> Path:
    rows = [{"id": f"p{i}", "prompt": p} for i, p in enumerate(prompts(count))]
    return write_jsonl(tmp_path / "d.jsonl", rows)


def checkpoint_rows(db: Path) -> int:
    """How many checkpoints the SQLite store at ``db`` holds (the saver's own table)."""
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0]


@pytest.mark.parametrize("named", ["path", "checkpointer"])
def test_sigkill_resumes_from_the_store_the_user_named_and_empties_it(
    cli: CliRunner,
    fake_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    named: str,
) -> None:
    """Four runs (N=2, D=2: seven policy requests each) killed after their first two
    requests; the rerun makes only the five each still needs, from the named store."""
    data, out, db = dataset(tmp_path, 4), tmp_path / "results.jsonl", tmp_path / "mine.sqlite"
    store = ["--checkpoints", str(db)] if named == "path" else ["--checkpointer", USER_SQLITE]
    args = ["eval", str(data), "-o", str(out), "-n", "2", "-d", "2", "-c", "4", *store]
    env = {**fake_env, checkpointers.STORE_ENV: str(db)}
    first_log = tmp_path / "first-run-calls.jsonl"
    sigkill_after_requests(args, env, first_log, 8)  # sample and textual_loss of every run
    assert not out.exists() or out.read_text() == ""  # every run was in flight
    assert len(policy_calls(first_log)) == 8 and checkpoint_rows(db) > 0
    assert not checkpoint_path(out).exists()  # the named store, not the default file

    monkeypatch.setenv(checkpointers.STORE_ENV, str(db))
    other_log = tmp_path / "other-results-calls.jsonl"  # another results file, same store
    monkeypatch.setenv("TPO_FAKE_LOG", str(other_log))
    other = invoke(cli, [*args[:3], str(tmp_path / "other.jsonl"), *args[4:]])
    assert other.exit_code == 0 and "resuming" not in other.stderr, other.output
    assert len(policy_calls(other_log)) == 4 * 7  # nothing taken from the killed runs

    second_log = tmp_path / "second-run-calls.jsonl"
    monkeypatch.setenv("TPO_FAKE_LOG", str(second_log))
    result = invoke(cli, args)
    assert result.exit_code == 0, result.output
    where = str(db) if named == "path" else f"checkpointer {USER_SQLITE}"
    assert f"resuming 4 runs in flight from {where}" in result.stderr
    second = policy_calls(second_log)
    assert [c["kind"] for c in second].count("sample") == 0
    assert 8 + len(second) == 4 * 7  # no finished request made twice
    assert len(read_jsonl(out)) == 4
    assert db.exists() and checkpoint_rows(db) == 0  # kept, every thread deleted


def test_an_in_memory_checkpointer_is_used_and_emptied(
    cli: CliRunner, fake_env: dict[str, str], tmp_path: Path
) -> None:
    data, out = dataset(tmp_path, 3), tmp_path / "results.jsonl"
    saver = checkpointers.memory
    args = ["eval", str(data), "-o", str(out), "-n", "2", "-d", "1", "-c", "2"]
    result = invoke(cli, [*args, "--checkpointer", "tests.cli.checkpointers:memory"])
    assert result.exit_code == 0, result.output
    assert len(read_jsonl(out)) == 3
    assert saver.set_up == 1
    assert len(saver.written) == 3 and sorted(saver.deleted) == sorted(saver.written)
    assert list(saver.list(None)) == []  # nothing left in the store
    assert not checkpoint_path(out).exists()


@pytest.mark.parametrize("checkpoints,left", [("auto", True), ("off", False)])
def test_checkpoints_off_writes_no_store(
    cli: CliRunner,
    fake_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    checkpoints: str,
    left: bool,
) -> None:
    """A failed prompt keeps the default store for the rerun; with ``off`` there is none."""
    monkeypatch.setenv("TPO_FAKE_FAIL", "number 1?")
    data, out = dataset(tmp_path, 3), tmp_path / "results.jsonl"
    args = ["eval", str(data), "-o", str(out), "-n", "2", "-d", "1"]
    result = invoke(cli, [*args, "--checkpoints", checkpoints])
    assert result.exit_code == 1 and "1 prompts failed" in result.stderr
    assert len(read_jsonl(out)) == 2
    assert checkpoint_path(out).exists() is left


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--checkpointer", "no_such_module_xyz:saver"], "cannot import 'no_such_module_xyz'"),
        (["--checkpointer", "tests.cli.checkpointers:nope"], "has no attribute 'nope'"),
        (["--checkpointer", "not a spec"], "must be 'module:function'"),
        (["--checkpointer", "tests.cli.checkpointers:not_a_saver"], "is a int: name a"),
        (["--checkpointer", "tests.cli.checkpointers:gives_a_dict"], "gave a dict, not a"),
        (["--checkpointer", "tests.cli.checkpointers:sync_only"], "SqliteSaver has no async"),
        (["--checkpoints", "off", "--checkpointer", USER_SQLITE], "give one"),
        (["--checkpoints", "/no/such/dir/x.sqlite"], "has no directory '/no/such/dir'"),
        (["--checkpoints", "RESULTS"], "is the results file"),
        (["--checkpoints", "DATA"], "is a file that is not an SQLite database"),
    ],
    ids=[
        "import",
        "attribute",
        "spec",
        "type",
        "made-type",
        "sync",
        "both",
        "directory",
        "results",
        "not-sqlite",
    ],  # fmt: skip
)
def test_bad_checkpoint_settings_stop_before_any_model_call(
    cli: CliRunner, fake_env: dict[str, str], tmp_path: Path, flags: list[str], message: str
) -> None:
    data, out = dataset(tmp_path, 2), tmp_path / "results.jsonl"
    flags = [{"RESULTS": str(out), "DATA": str(data)}.get(f, f) for f in flags]
    result = invoke(cli, ["eval", str(data), "-o", str(out), *flags])
    assert result.exit_code == 1, result.output
    assert message in result.stderr and flags[-1] in result.stderr
    assert policy_calls(Path(fake_env["TPO_FAKE_LOG"])) == []
    assert not out.exists() or out.read_text() == ""
