"""``--policy-factory`` / ``--reward-factory``: your own models in ``tpo run`` and ``tpo eval``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from testsupport.fake_backends import FAKE_FACTORIES, POLICY_FACTORY, REWARD_FACTORY

from .conftest import invoke, policy_calls, prompts, read_jsonl, spawn, write_jsonl

FLAGS = ["--policy-factory", POLICY_FACTORY, "--reward-factory", REWARD_FACTORY]


@pytest.fixture
def no_env_factories(fake_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Path:
    """Fake backends only when named on the command line; returns the policy's call log."""
    for name in FAKE_FACTORIES:
        monkeypatch.delenv(name)
    return Path(fake_env["TPO_FAKE_LOG"])


def test_run_on_factories_named_by_flags(cli: CliRunner, no_env_factories: Path) -> None:
    result = invoke(cli, ["run", "Name a color.", *FLAGS, "-n", "2", "-d", "1", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["response"].startswith("answer:") and out["stop_reason"] == "max_iterations"
    assert [c["kind"] for c in policy_calls(no_env_factories)] == [
        "sample", "loss", "gradient", "update",
    ]  # fmt: skip


def test_run_on_factories_named_in_a_config_file(
    cli: CliRunner, no_env_factories: Path, tmp_path: Path
) -> None:
    config = tmp_path / "tpo.toml"
    config.write_text(
        f'policy_factory = "{POLICY_FACTORY}"\nreward_factory = "{REWARD_FACTORY}"\n'
        "num_samples = 2\nmax_iterations = 0\n"
    )
    result = invoke(cli, ["run", "Name a color.", "--config", str(config), "-q"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("answer:")
    assert len(policy_calls(no_env_factories)) == 1


def test_eval_records_the_factories_as_its_backends(
    cli: CliRunner, no_env_factories: Path, tmp_path: Path
) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", [{"prompt": p} for p in prompts(2)])
    out = tmp_path / "results.jsonl"
    result = invoke(cli, ["eval", str(data), "-o", str(out), *FLAGS, "-n", "2", "-d", "1"])
    assert result.exit_code == 0, result.output
    records = read_jsonl(out)
    assert len(records) == 2
    assert records[0]["backend"] == {
        "policy_factory": POLICY_FACTORY,
        "reward_factory": REWARD_FACTORY,
    }


@pytest.mark.parametrize("command", ["run", "eval"])
def test_a_bad_factory_is_one_error_line_before_any_model_call(
    cli: CliRunner, no_env_factories: Path, tmp_path: Path, command: str
) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", [{"prompt": p} for p in prompts(2)])
    out = tmp_path / "results.jsonl"
    target = ["Name a color."] if command == "run" else [str(data), "-o", str(out)]
    bad = "testsupport.fake_backends:no_such_factory"
    result = invoke(cli, [command, *target, "--policy-factory", POLICY_FACTORY,
                          "--reward-factory", bad])  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert bad in result.stderr and "has no attribute 'no_such_factory'" in result.stderr
    assert policy_calls(no_env_factories) == []
    assert not out.exists() or out.read_text() == ""


def test_a_tpo_process_imports_the_factories_from_the_environment(
    fake_env: dict[str, str],
) -> None:
    proc = spawn(["run", "Name a color.", "-n", "2", "-d", "0", "-q"], fake_env)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert stdout.startswith("answer:")
    assert policy_calls(Path(fake_env["TPO_FAKE_LOG"]))[0]["query"] == "Name a color."
