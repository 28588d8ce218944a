"""``tpo prompts show``, ``--prompts NAME|FILE``, ``--critique-max-tokens``, ``--extraction``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from langgraph_tpo import PromptSet
from langgraph_tpo.prompts import BUILTIN_SETS

from .conftest import invoke, policy_calls

QUERY = "How do I take care of a wooden table?"


@pytest.mark.parametrize("name", sorted(BUILTIN_SETS))
def test_show_prints_a_file_that_prompts_reads_back(
    cli: CliRunner, fake_env: dict[str, str], tmp_path: Path, name: str
) -> None:
    shown = invoke(cli, ["prompts", "show", name])
    assert shown.exit_code == 0, shown.output
    path = tmp_path / f"{name}.yaml"
    path.write_text(shown.stdout, encoding="utf-8")
    assert PromptSet.from_file(path) == BUILTIN_SETS[name]
    result = invoke(cli, ["run", QUERY, "--json", "-n", "2", "-d", "1", "--prompts", str(path)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["stop_reason"] == "max_iterations"


def test_show_an_unknown_set_is_one_red_line(cli: CliRunner) -> None:
    result = invoke(cli, ["prompts", "show", "papr"])
    assert result.exit_code == 1
    assert result.stderr == "error: unknown prompt set 'papr'; built-in sets: paper, compact\n"


def test_an_edited_set_with_an_unknown_variable_fails_before_any_model_call(
    cli: CliRunner, fake_env: dict[str, str], tmp_path: Path
) -> None:
    data = BUILTIN_SETS["paper"].to_dict()
    data["update"][-1]["content"] += " Mind {tone}."
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    result = invoke(cli, ["run", QUERY, "--prompts", str(path)])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "prompt step 'update': unknown template variable {tone}" in result.stderr
    assert policy_calls(Path(fake_env["TPO_FAKE_LOG"])) == []


def test_prompts_that_is_neither_a_name_nor_a_file_is_one_red_line(
    cli: CliRunner, fake_env: dict[str, str]
) -> None:
    result = invoke(cli, ["run", QUERY, "--prompts", "nosuch.yaml"])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "neither a built-in prompt set (paper, compact) nor a file" in result.stderr


def test_caps_and_extraction_flags_reach_the_run(
    cli: CliRunner, fake_env: dict[str, str], tmp_path: Path
) -> None:
    args = ["run", QUERY, "--json", "-n", "2", "-d", "1", "--prompts", "compact", "--max-tokens",
            "22", "--critique-max-tokens", "33", "--extraction", "strict"]  # fmt: skip
    result = invoke(cli, args)
    assert result.exit_code == 0, result.output
    caps = {
        c["kind"]: c["kwargs"]["max_tokens"] for c in policy_calls(Path(fake_env["TPO_FAKE_LOG"]))
    }
    assert caps == {"sample": 22, "loss": 33, "gradient": 33, "update": 22}
    assert json.loads(result.stdout)["trajectory"][1]["extraction"] == {"tagged": 2}


def test_a_bad_extraction_rule_is_one_red_line(cli: CliRunner, fake_env: dict[str, str]) -> None:
    result = invoke(cli, ["run", QUERY, "--extraction", "loose"])
    assert result.exit_code == 1 and "extraction" in result.stderr
    assert result.stderr.count("\n") == 1


def test_prompts_can_be_set_in_the_config_file(
    cli: CliRunner, fake_env: dict[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "tpo.toml"
    config.write_text('prompts = "compact"\ncritique_max_tokens = 44\n')
    result = invoke(cli, ["run", QUERY, "-n", "2", "-d", "1", "--config", str(config)])
    assert result.exit_code == 0, result.output
    caps = {
        c["kind"]: c["kwargs"]["max_tokens"] for c in policy_calls(Path(fake_env["TPO_FAKE_LOG"]))
    }
    assert caps["loss"] == 44
