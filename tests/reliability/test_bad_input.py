"""Bad input: each is a clear error naming the field, before any model call.

The models are real HTTP clients of stub servers, so "no model call" is checked where it
counts: no request reached either server.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from langgraph_tpo import TPOConfig, create_tpo_graph
from langgraph_tpo.backends.factory import BackendSettings
from langgraph_tpo.backends.servers.vllm_server import VLLMServerReward, vllm_chat_model
from langgraph_tpo.cli import app
from langgraph_tpo.errors import ConfigError, ContextTooLongError

from .conftest import CLEAN_ENV, QUERY, QUICK, SMALL, Backends


def assert_untouched(backends: Backends) -> None:
    assert backends.policy.count() == 0 and backends.reward.count() == 0


@pytest.mark.parametrize(
    "state,message",
    [
        ({}, "input needs a 'query'"),
        ({"query": ""}, "query is empty"),
        ({"query": " \n\t\u3000 "}, "query is empty or whitespace only"),
        ({"query": 42}, "query must be a string, got int"),
        ({"query": ["a", "b"]}, "query must be a string, got list"),
        ({"query": {"text": "hi"}}, "query must be a string, got dict"),
        ({"messages": [("ai", "Hello, how can I help?")]}, "no user message"),
        ({"messages": [("system", "Be terse.")]}, "no user message"),
        ({"messages": [("human", "Hi"), ("ai", "Hello.")]}, "last message must be the user's"),
    ],
)
async def test_bad_graph_input_is_rejected_before_any_model_call(
    backends: Backends, state: dict[str, Any], message: str
) -> None:
    graph = create_tpo_graph(backends.chat_model(), backends.reward_model(), SMALL, retry=QUICK)
    with pytest.raises(ConfigError, match=message):
        await graph.ainvoke(state)
    assert_untouched(backends)


@pytest.mark.parametrize(
    "context,field",
    [
        ({"num_samples": 0}, "num_samples"),
        ({"num_samples": -3}, "num_samples"),
        ({"max_iterations": -1}, "max_iterations"),
        ({"score_threshold": "high"}, "score_threshold"),
        ({"score_threshold": float("nan")}, "score_threshold"),
        ({"mode": "greedy"}, "mode"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"top_p": 1.5}, "top_p"),
        ({"num_sample": 3}, "num_sample"),  # a typo is not silently ignored
        ({"num_samples": True}, "num_samples"),  # values keep their types (strict)
        ({"max_iterations": "0"}, "max_iterations"),
        ({"max_tokens": 8.0}, "max_tokens"),
        ({"temperature": "0.5"}, "temperature"),
        ({"seed": False}, "seed"),
        ({"review_gradient": "yes"}, "review_gradient"),
        ({"frequency_penalty": 2.5}, "frequency_penalty"),
        ({"presence_penalty": -2.5}, "presence_penalty"),
        ({"repetition_penalty": 0.0}, "repetition_penalty"),
    ],
)
async def test_bad_run_settings_are_rejected_before_any_model_call(
    backends: Backends, context: dict[str, Any], field: str
) -> None:
    """Per-run ``context=`` (which LangGraph turns into a TPOConfig when the run starts) and
    graph defaults are both checked strictly, as a ConfigError naming the field."""
    graph = create_tpo_graph(backends.chat_model(), backends.reward_model(), SMALL, retry=QUICK)
    with pytest.raises(ConfigError, match=field):  # (create_tpo_graph's type has no context type)
        await graph.ainvoke({"query": QUERY}, context=context)  # type: ignore[call-overload]
    with pytest.raises(ConfigError, match=field):
        create_tpo_graph(backends.chat_model(), backends.reward_model(), context)
    assert_untouched(backends)


@pytest.mark.parametrize("url", ["ftp://127.0.0.1:1", "grpc://h:1", "127.0.0.1:8000", "unix:///s"])
def test_unknown_url_scheme_names_the_url(url: str, reward_tokenizer: Path) -> None:
    with pytest.raises(ConfigError, match=repr(url)):
        vllm_chat_model(url, "m")
    with pytest.raises(ConfigError, match=repr(url)):
        VLLMServerReward(url, "m", tokenizer_path=reward_tokenizer)
    for settings, field in (
        ({"policy_url": url, "policy_model": "m"}, "policy_url"),
        ({"reward_url": url, "reward_model": "r"}, "reward_url"),
    ):
        with pytest.raises(ConfigError, match=f"{field} must be an http"):
            BackendSettings(**settings)


async def test_query_over_the_window_is_one_refused_request_and_a_clear_error(
    backends: Backends,
) -> None:
    backends.policy.configure({"max_prompt_chars": 4000})
    graph = create_tpo_graph(backends.chat_model(), backends.reward_model(), SMALL, retry=QUICK)
    with pytest.raises(ContextTooLongError, match="maximum context length") as info:
        await graph.ainvoke({"query": "long " * 2000})
    assert not info.value.transient  # the same query will not fit next time either
    assert backends.policy.count() == 1 and backends.reward.count() == 0


# --- the CLI ----------------------------------------------------------------------------


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in CLEAN_ENV:
        monkeypatch.delenv(name, raising=False)
    return CliRunner()


def cli_error(runner: CliRunner, args: list[str], stdin: str | None = None) -> str:
    """Run ``tpo ARGS`` in-process; return its single error line (exit status 1)."""
    result = runner.invoke(app, args, input=stdin, catch_exceptions=False)
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize(
    "args,stdin,message",
    [
        (["run", ""], None, "the prompt is empty"),
        (["run", "  \n "], None, "the prompt is empty"),
        (["run", "-"], "", "the prompt is empty (nothing on stdin)"),
        (["run", QUERY, "-n", "0"], None, "num_samples"),
        (["run", QUERY, "-d", "-1"], None, "max_iterations"),
        (["run", QUERY, "--mode", "greedy"], None, "mode"),
        (["run", QUERY, "--threshold", "nan"], None, "score_threshold"),
        (["run", QUERY, "--max-tokens", "0"], None, "max_tokens"),
        (["run", QUERY, "--frequency-penalty", "2.5"], None, "frequency_penalty"),
        (["run", QUERY, "--repetition-penalty", "-1"], None, "repetition_penalty"),
    ],
)
def test_cli_bad_input_is_one_line_before_any_model_call(
    cli: CliRunner, backends: Backends, args: list[str], stdin: str | None, message: str
) -> None:
    line = cli_error(cli, [*args, *backends.cli_args()], stdin)
    assert message in line, line
    assert_untouched(backends)


def test_cli_threshold_not_a_number_names_the_option(cli: CliRunner, backends: Backends) -> None:
    result = cli.invoke(app, ["run", QUERY, "--threshold", "high", *backends.cli_args()])
    assert result.exit_code == 2  # a usage error, from the command-line parser
    assert "--threshold" in result.stderr and "Traceback" not in result.output
    assert_untouched(backends)


def test_strict_config_keeps_what_must_work() -> None:
    config = TPOConfig(temperature=1, top_p=1, score_threshold=None, patience=None, seed=None)
    assert config.temperature == 1.0 and isinstance(config.temperature, float)


@pytest.mark.parametrize(
    "text,field",
    [("num_samples = true\n", "num_samples"), ('max_iterations = "0"\n', "max_iterations")],
)
def test_cli_settings_file_values_keep_their_types(
    cli: CliRunner, backends: Backends, tmp_path: Path, text: str, field: str
) -> None:
    settings = tmp_path / "tpo.toml"
    settings.write_text(text)
    line = cli_error(cli, ["run", QUERY, "--config", str(settings), *backends.cli_args()])
    assert field in line and "valid integer" in line, line
    assert_untouched(backends)


@pytest.mark.parametrize("other", [["--reward-path", "rm"], ["--reward-url", "http://h:1"]])
def test_cli_judge_with_a_reward_model_is_a_conflict(cli: CliRunner, other: list[str]) -> None:
    line = cli_error(cli, ["run", QUERY, "--judge", *other])
    assert "judge conflicts with" in line and other[0] in line, line


def test_judge_with_a_reward_model_is_a_conflict_in_code() -> None:
    with pytest.raises(ConfigError, match="judge conflicts with reward_url and reward_path"):
        BackendSettings(judge=True, reward_url="http://h:1", reward_path="rm")


def test_cli_settings_file_values_are_checked(
    cli: CliRunner, backends: Backends, tmp_path: Path
) -> None:
    settings = tmp_path / "tpo.toml"
    settings.write_text('score_threshold = "high"\nnum_samples = 2\n')
    line = cli_error(cli, ["run", QUERY, "--config", str(settings), *backends.cli_args()])
    assert "score_threshold" in line, line
    assert_untouched(backends)


@pytest.mark.parametrize(
    "flag,url,field",
    [("--policy-url", "ftp://127.0.0.1:1/v1", "policy_url"),
     ("--reward-url", "unix:///tmp/reward.sock", "reward_url")],
)  # fmt: skip
def test_cli_unknown_url_scheme_names_the_setting(
    cli: CliRunner, backends: Backends, flag: str, url: str, field: str
) -> None:
    args = backends.cli_args()
    args[args.index(flag) + 1] = url
    line = cli_error(cli, ["run", QUERY, *args])
    assert f"{field} must be an http(s) URL" in line and url in line, line
    assert_untouched(backends)


@pytest.mark.parametrize(
    "records,where",
    [
        ([{"prompt": "fine"}, {"prompt": "   "}], ["line 2", "field 'prompt'"]),
        ([{"prompt": "fine"}, {"prompt": 42}], ["line 2", "field 'prompt'"]),
        ([{"prompt": "fine"}, {"text": "no prompt field"}], ["line 2", "field 'prompt'"]),
    ],
)
def test_cli_eval_bad_dataset_is_one_line_before_any_model_call(
    cli: CliRunner, backends: Backends, tmp_path: Path, records: list[Any], where: list[str]
) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    line = cli_error(cli, ["eval", str(data), "-o", str(tmp_path / "r.jsonl"),
                           *backends.cli_args()])  # fmt: skip
    assert all(part in line for part in where), line
    assert_untouched(backends)


# --- the settings file ------------------------------------------------------------------


def settings_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tpo.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text,message",
    [
        ("num_sample = 2\n", "unknown setting 'num_sample' (did you mean 'num_samples'?)"),
        ("polcy_url = 'http://h:1/v1'\n", "(did you mean 'policy_url'?)"),
        ("retires = 1\n", "(did you mean 'retries'?)"),
        ("zzz = 1\n", "unknown setting 'zzz'"),
        ("quiet = true\n", "'quiet' is set on the command line only"),
        ("judge = 'yes'\n", "judge: Input should be a valid boolean"),
        ("retries = '2'\n", "retries must be an integer"),
        ("concurrency = 0\n", "concurrency must be >= 1"),
    ],
)
def test_cli_settings_file_keys_are_checked_like_the_flags(
    cli: CliRunner, backends: Backends, tmp_path: Path, text: str, message: str
) -> None:
    config = settings_file(tmp_path, text)
    line = cli_error(cli, ["run", QUERY, "--config", str(config), *backends.cli_args()])
    assert message in line, line
    assert_untouched(backends)


def test_cli_retries_can_be_set_in_the_settings_file(
    cli: CliRunner, backends: Backends, tmp_path: Path
) -> None:
    backends.policy.configure(
        {"faults": [{"path": "chat", "action": "status", "times": None, "status": 503}]}
    )
    config = settings_file(tmp_path, "retries = 1\nnum_samples = 2\nmax_iterations = 1\n")
    line = cli_error(cli, ["run", QUERY, "--config", str(config), *backends.cli_args()])
    assert "503" in line, line
    assert backends.policy.count("chat") == 2  # one retry, as the file asks


def test_cli_eval_options_can_be_set_in_the_settings_file(
    cli: CliRunner, backends: Backends, tmp_path: Path
) -> None:
    data, out = tmp_path / "d.jsonl", tmp_path / "r.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"Question {i}?"}) + "\n" for i in range(3)))
    config = settings_file(
        tmp_path, "limit = 1\nconcurrency = 2\nmax_errors = 1\ncompare = 'bon'\nmax_tokens = 8\n"
        "num_samples = 2\nmax_iterations = 1\n",
    )  # fmt: skip
    args = ["eval", str(data), "-o", str(out), "--config", str(config), *backends.cli_args()]
    result = cli.invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["method"] for line in lines] == ["bon"]  # limit 1, compare bon
