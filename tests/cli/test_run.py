"""``tpo run`` on fake backends: output modes, stdin, config files, errors, secrets, help."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from langgraph_tpo.backends.factory import BackendSettings
from langgraph_tpo.cli.app import load_command
from langgraph_tpo.cli.models import describe_backends
from langgraph_tpo.cli.options import BACKEND_FLAGS, CONFIG_FLAGS
from langgraph_tpo.config import TPOConfig
from langgraph_tpo.errors import redact

from .conftest import invoke, policy_calls, spawn

QUERY = "How do I take care of a wooden table?"
KEY = "sk-PLANTED"


def test_run_prints_best_response_score_and_iteration_table(
    cli: CliRunner, fake_env: dict[str, str]
) -> None:
    result = invoke(cli, ["run", QUERY, "-n", "3", "-d", "2"])
    assert result.exit_code == 0, result.output
    assert "Best response" in result.stdout and "answer: good" in result.stdout
    assert "score:" in result.stdout and "stop: max_iterations" in result.stdout
    assert "Iterations" in result.stdout and "best so far" in result.stdout
    # progress lines come from the graph's custom "tpo_iteration" events, on stderr
    assert "iteration 1/2  best" in result.stderr
    assert "iteration 2/2" in result.stderr and "stop: max_iterations" in result.stderr


def test_json_prints_the_whole_final_state(cli: CliRunner, fake_env: dict[str, str]) -> None:
    result = invoke(cli, ["run", QUERY, "--json", "-n", "2", "-d", "1"])
    assert result.exit_code == 0, result.output
    state = json.loads(result.stdout)
    assert state["query"] == QUERY
    assert {"response", "score", "candidates", "trajectory", "stop_reason"} <= state.keys()
    assert len(state["candidates"]) == 4 and len(state["trajectory"]) == 2
    assert state["score"] == max(c["score"] for c in state["candidates"])


def test_quiet_prints_only_the_response(cli: CliRunner, fake_env: dict[str, str]) -> None:
    result = invoke(cli, ["run", QUERY, "--quiet", "-n", "2", "-d", "1"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("answer:") and result.stdout.count("\n") == 1
    assert result.stderr == ""


def test_prompt_dash_reads_stdin(tmp_path: Path, fake_env: dict[str, str]) -> None:
    """Through the real entry point: ``tpo run - --json < prompt``."""
    proc = spawn(["run", "-", "--json", "-n", "2", "-d", "0"], fake_env, stdin=-1)
    out, err = proc.communicate("A multi-line\nquestion from stdin?\n", timeout=120)
    assert proc.returncode == 0, err
    assert json.loads(out)["query"] == "A multi-line\nquestion from stdin?\n"
    assert (
        policy_calls(Path(fake_env["TPO_FAKE_LOG"]))[0]["query"]
        == "A multi-line\nquestion from stdin?\n"
    )


def test_empty_stdin_is_an_error(cli: CliRunner, fake_env: dict[str, str]) -> None:
    result = invoke(cli, ["run", "-"], input="  \n")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: the prompt is empty")


@pytest.mark.parametrize(
    "name,text",
    [
        ("tpo.toml", "num_samples = 4\nmax_iterations = 3\ntemperature = 0.25\nseed = 7\n"),
        ("tpo.yaml", "num-samples: 4\nmax-iterations: 3\ntemperature: 0.25\nseed: 7\n"),
    ],
)
def test_config_file_with_flag_override(
    cli: CliRunner, fake_env: dict[str, str], tmp_path: Path, name: str, text: str
) -> None:
    config = tmp_path / name
    config.write_text(text)
    args = ["run", QUERY, "--json", "--config", str(config), "-d", "1", "--seed", "100"]
    result = invoke(cli, args)
    assert result.exit_code == 0, result.output
    state = json.loads(result.stdout)
    assert len(state["trajectory"]) == 2  # -d 1 overrides max_iterations = 3
    assert len(state["candidates"]) == 8  # num_samples = 4 from the file
    sample = policy_calls(Path(fake_env["TPO_FAKE_LOG"]))[0]
    assert sample["n"] == 4 and sample["kwargs"]["temperature"] == 0.25  # from the file
    assert sample["kwargs"]["seed"] == 100  # --seed overrides seed = 7


@pytest.mark.parametrize(
    "text,message",
    [
        ("review_gradient = true\n", "review_gradient is not available in the CLI"),
        ("num_sample = 3\n", "unknown setting 'num_sample' (did you mean 'num_samples'?)"),
        ("num_samples = [\n", "cannot parse settings"),
    ],
)
def test_bad_config_file_is_one_red_line(
    cli: CliRunner, fake_env: dict[str, str], tmp_path: Path, text: str, message: str
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    result = invoke(cli, ["run", QUERY, "--config", str(config)])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args,message",
    [
        (["-n", "0"], "num_samples"),
        (["--mode", "greedy"], "mode"),
        (
            ["--policy-url", "ftp://host", "--policy-model", "m"],
            "policy_url must be an http(s) URL",
        ),
        (["--policy-url", "http://127.0.0.1:9/v1"], "policy_url needs policy_model"),
        (["--reward-path", "rm", "--reward-device", "gpu"], "reward device must be cpu"),
        (["--reward-path", "rm", "--reward-dtype", "fp8"], "reward dtype must be one of"),
        (["--frequency-penalty", "2.5"], "frequency_penalty"),
        (["--presence-penalty=-3"], "presence_penalty"),
        (["--repetition-penalty", "0"], "repetition_penalty"),
    ],
)
def test_invalid_settings_are_one_red_line(
    cli: CliRunner, fake_env: dict[str, str], args: list[str], message: str
) -> None:
    result = invoke(cli, ["run", QUERY, *args])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_penalty_the_policy_cannot_apply_is_one_red_line_before_any_call(
    cli: CliRunner, fake_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TPO_PRESENCE_PENALTY", "0.5")
    result = invoke(cli, ["run", QUERY, "--repetition-penalty", "1.2"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: the policy FakeTPOPolicy cannot apply ")
    assert "repetition_penalty" in result.stderr and "presence_penalty" in result.stderr
    assert result.stderr.count("\n") == 1
    assert policy_calls(Path(fake_env["TPO_FAKE_LOG"])) == []  # no policy call was made


def test_help_lists_the_repetition_controls(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # room for whole names: rich folds long words
    result = invoke(cli, ["run", "--help"])
    for flag in ("--frequency-penalty", "--presence-penalty", "--repetition-penalty"):
        assert flag in result.output
    assert "TPO_REPETITION_PENALTY" in result.output


def test_api_key_never_appears_in_any_output(
    cli: CliRunner, fake_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outputs = []
    for mode in ([], ["--json"], ["--quiet"]):
        result = invoke(cli, ["run", QUERY, "--api-key", KEY, "-n", "2", "-d", "1", *mode])
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    monkeypatch.setenv("TPO_API_KEY", KEY)
    data = tmp_path / "data.json"
    data.write_text(json.dumps(["q one", "q two"]))
    out = tmp_path / "res.jsonl"
    result = invoke(cli, ["eval", str(data), "-o", str(out), "-n", "2", "-d", "1"])
    assert result.exit_code == 0, result.output
    outputs += [result.output, out.read_text()]
    for command in ("run", "eval"):
        outputs.append(invoke(cli, [command, "--help"]).output)
    assert all(KEY not in text for text in outputs)
    assert "TPO_API_KEY" in outputs[-1]


def test_connection_failure_is_one_red_line_without_the_key(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real OpenAI-compatible client against a closed port: no traceback, no key."""
    for name in ("TPO_POLICY_FACTORY", "TPO_REWARD_FACTORY"):
        monkeypatch.delenv(name, raising=False)
    args = ["--policy-url", "http://127.0.0.1:9/v1", "--policy-model", "m", "--api-key", KEY]
    result = invoke(cli, ["run", QUERY, *args, "-n", "1", "-d", "0", "--retries", "0", "-q"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "connection" in result.stderr.lower() and KEY not in result.output


def _options(command: str) -> list[Any]:
    """The command's options (typer vendors its own click classes: duck-typed; the ``tpo``
    group loads each command when it is used)."""
    return [p for p in load_command(command).params if p.opts[0].startswith("-")]


@pytest.mark.parametrize("command", ["run", "eval", "report", "serve"])
def test_help_explains_every_flag(cli: CliRunner, command: str) -> None:
    result = invoke(cli, [command, "--help"])
    assert result.exit_code == 0
    for option in _options(command):
        assert option.help and len(option.help) > 10, option.name
        assert option.opts[0] in result.output


@pytest.mark.parametrize("command", ["run", "eval", "serve"])
def test_every_setting_but_review_gradient_has_a_flag(command: str) -> None:
    names = {o.name for o in _options(command)}
    assert set(TPOConfig.model_fields) - {"review_gradient"} == CONFIG_FLAGS
    assert set(BackendSettings.model_fields) == BACKEND_FLAGS
    assert names >= CONFIG_FLAGS | BACKEND_FLAGS
    assert "review_gradient" not in names
    assert "api_key" in names


def test_results_and_error_lines_hide_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = BackendSettings(
        policy_url="http://user:pw@host:8000/v1", policy_model="m", api_key=KEY
    )
    assert describe_backends(settings) == {"policy_url": "http://host:8000/v1", "policy_model": "m"}
    monkeypatch.setenv("OPENAI_API_KEY", "sk-FROM-ENV")
    assert redact(f"bad key {KEY} and sk-FROM-ENV", [KEY]) == "bad key *** and ***"
