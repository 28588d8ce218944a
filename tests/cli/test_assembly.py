"""One place builds a run (langgraph_tpo.assembly): the layering of settings, the choices
that used to pass in silence, the models and graphs it builds, and the progress events."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from langgraph_tpo.assembly import (
    NodeFinished,
    Reported,
    RunFinished,
    assemble,
    resolve_settings,
    run_defaults,
    run_events,
)
from langgraph_tpo.backends.factory import BackendSettings
from langgraph_tpo.cli import app
from langgraph_tpo.config import EMBEDDED_DEFAULTS
from langgraph_tpo.errors import ConfigError
from langgraph_tpo.fakes import FakeBatchReward, FakeNPolicy

PACKAGE = Path(__file__).resolve().parents[2] / "langgraph_tpo"
CALL_LOG = "TPO_FAKE_LOG"


def calls_made(env: dict[str, str]) -> int:
    log = Path(env[CALL_LOG])
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_embedded_defaults_sit_under_the_environment_and_what_is_given() -> None:
    config, backends = resolve_settings(environ={})
    assert backends.is_embedded
    assert {k: getattr(config, k) for k in EMBEDDED_DEFAULTS} == EMBEDDED_DEFAULTS

    config, _ = resolve_settings({"num_samples": 4}, environ={"TPO_NUM_SAMPLES": "2"})
    assert config.num_samples == 4 and config.max_tokens == EMBEDDED_DEFAULTS["max_tokens"]
    config, _ = resolve_settings(environ={"TPO_NUM_SAMPLES": "2"})
    assert config.num_samples == 2


def test_a_server_policy_keeps_the_paper_defaults() -> None:
    given = {"policy_url": "http://127.0.0.1:9/v1", "policy_model": "m"}
    config, backends = resolve_settings(given, environ={})
    assert run_defaults(backends) == {}
    assert (config.num_samples, config.max_iterations, config.max_tokens) == (5, 2, 2048)


def test_rules_between_backend_settings_are_validators() -> None:
    with pytest.raises(ConfigError, match="judge conflicts with reward_url"):
        BackendSettings(judge=True, reward_url="http://h:1", reward_model="r")
    with pytest.raises(ConfigError, match="policy_url needs policy_model"):
        resolve_settings({"policy_url": "http://h:1/v1"}, environ={})
    with pytest.raises(ConfigError, match="unknown settings: beams"):
        resolve_settings({"beams": 3}, environ={})


def test_bon_with_a_depth_is_refused_not_ignored() -> None:
    with pytest.raises(ConfigError, match="max_iterations \\(1\\) has no effect with mode 'bon'"):
        resolve_settings({"mode": "bon", "max_iterations": 1}, environ={})
    with pytest.raises(ConfigError, match="no effect with mode 'bon'"):
        resolve_settings({"mode": "bon"}, environ={"TPO_MAX_ITERATIONS": "2"})
    config, _ = resolve_settings({"mode": "bon"}, environ={})  # the embedded D=1 is no choice
    assert config.mode == "bon"


@pytest.mark.parametrize(
    "name,text,message",
    [
        ("run.toml", "concurrency = 3\n", "'concurrency' is an option of tpo eval, not of tpo run"),
        ("run.yml", "num_samples = 3\nmax_tokens = 64\n", "this is TOML, not YAML: name it .toml"),
        ("run.toml", "num_samples: 3\n", "this is YAML, not TOML: name it .yaml"),
        ("run.toml", 'num_samples = "three"\n', "num_samples: Input should be a valid integer"),
        ("run.yaml", "temperature: -1\n", "temperature: Input should be greater than or equal"),
    ],
)
def test_config_file_problems_name_the_file_before_any_model_call(
    fake_env: dict[str, str], cli: CliRunner, tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    result = cli.invoke(app, ["run", "--config", str(path), "hello"])
    assert result.exit_code == 1, result.output
    assert str(path) in result.output and message in " ".join(result.output.split())
    assert calls_made(fake_env) == 0


def test_bon_with_d_on_the_command_line_is_one_red_line(
    fake_env: dict[str, str], cli: CliRunner
) -> None:
    result = cli.invoke(app, ["run", "--mode", "bon", "-d", "1", "hello"])
    assert result.exit_code == 1 and "no effect with mode 'bon'" in result.output
    assert calls_made(fake_env) == 0


def test_an_eval_option_in_the_eval_config_file_is_used(
    fake_env: dict[str, str], cli: CliRunner, tmp_path: Path
) -> None:
    data = tmp_path / "prompts.json"
    data.write_text(json.dumps(["one", "two", "three"]))
    config = tmp_path / "eval.toml"
    config.write_text("limit = 2\nnum_samples = 2\nmax_iterations = 1\n")
    out = tmp_path / "results.jsonl"
    result = cli.invoke(app, ["eval", str(data), "--out", str(out), "--config", str(config)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 2 and {line["config"]["num_samples"] for line in lines} == {2}


async def test_assemble_builds_one_graph_per_config_on_the_same_models() -> None:
    policy, reward = FakeNPolicy(), FakeBatchReward()
    run = assemble(
        {"num_samples": 2, "max_iterations": 1}, BackendSettings(), models=(policy, reward)
    )
    assert run.policy is policy and run.reward is reward
    bon = run.graph_for({"num_samples": 4, "max_iterations": 0, "mode": "bon"})
    out = await bon.ainvoke({"query": "q"})
    assert len(out["candidates"]) == 4 and out["stop_reason"] == "bon"

    events = [e async for e in run_events(run.graph, {"query": "q"})]
    nodes = [e.node for e in events if isinstance(e, NodeFinished)]
    assert nodes[:3] == ["sample", "reward_score", "select"] and "update" in nodes
    assert any(isinstance(e, Reported) for e in events)
    assert isinstance(events[-1], RunFinished) and events[-1].state["response"]
    assert events[-1].state["trajectory"][-1]["iteration"] == 1


def calls_in_package(name: str) -> set[str]:
    """The modules of the package that call ``name(...)``."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if called == name:
                    found.add(str(path.relative_to(PACKAGE)))
    return found


def names_used(name: str) -> set[str]:
    return {
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*.py")
        if name in p.read_text(encoding="utf-8")
    }


def test_models_and_graph_are_assembled_in_one_place() -> None:
    assert calls_in_package("create_tpo_graph") == {"assembly.py"}
    assert calls_in_package("build_models") == {"assembly.py"}
    assert names_used("EMBEDDED_DEFAULTS") <= {"assembly.py", "config.py", "backends/factory.py"}
