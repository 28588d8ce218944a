"""What the README's "Install" section promises: the CPU preset and the extras' errors."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from langgraph_tpo import TPOConfig
from langgraph_tpo.backends.factory import BackendSettings, build_models
from langgraph_tpo.backends.plumbing import extras
from langgraph_tpo.cli.options import CommandSettings
from langgraph_tpo.config import EMBEDDED_DEFAULTS
from langgraph_tpo.errors import BackendUnavailableError, ConfigError


@pytest.fixture
def no_tpo_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``TPO_*`` variable of the test run's environment leaks into the settings."""
    for name in [n for n in __import__("os").environ if n.startswith("TPO_")]:
        monkeypatch.delenv(name)


def test_the_cpu_preset_is_what_tpo_run_uses_on_the_embedded_model(no_tpo_env: None) -> None:
    config, backends = CommandSettings(flags={}).resolve()  # `tpo run "..."`, no flag
    assert backends.is_embedded
    assert config == TPOConfig.cpu()
    assert TPOConfig.cpu() != TPOConfig()  # the paper's defaults are larger
    assert (config.num_samples, config.max_iterations, config.max_tokens) == (3, 1, 256)
    assert config.repetition_penalty == 1.1


def test_the_cpu_preset_takes_overrides_and_checks_them() -> None:
    assert TPOConfig.cpu(max_tokens=64).max_tokens == 64
    assert TPOConfig.cpu(max_tokens=64).num_samples == EMBEDDED_DEFAULTS["num_samples"]
    with pytest.raises(ConfigError, match="num_samples"):
        TPOConfig.cpu(num_samples=0)


def _block(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Make ``names`` unimportable, as on a machine without them (None in sys.modules)."""
    for name in names:
        monkeypatch.setitem(sys.modules, name, None)


def test_require_passes_when_installed_and_names_the_extra_when_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    extras.require("local", "json")  # installed: nothing happens
    _block(monkeypatch, "torch")
    with pytest.raises(BackendUnavailableError) as caught:
        extras.require("local", "torch", "json", what="the embedded model")
    message = str(caught.value)
    assert "the embedded model needs torch, which is not installed" in message
    assert "pip install 'langgraph-tpo[local]'" in message


def test_a_missing_parent_package_counts_as_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not extras.is_installed("no_such_package_tpo.sub")
    real = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return None if name == "math_verify" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    assert not extras.is_installed("math_verify")


def test_build_models_without_torch_fails_at_build_time_naming_local(
    monkeypatch: pytest.MonkeyPatch, no_tpo_env: None
) -> None:
    _block(monkeypatch, "torch")
    with pytest.raises(BackendUnavailableError, match=r"langgraph-tpo\[local\]"):
        build_models()  # before: built, then the first invoke failed with PolicyError


def test_the_transformers_constructors_check_too(monkeypatch: pytest.MonkeyPatch) -> None:
    from langgraph_tpo.backends.inprocess.transformers_chat import TransformersChatModel
    from langgraph_tpo.backends.rewards.transformers_reward import TransformersReward

    _block(monkeypatch, "transformers")
    with pytest.raises(BackendUnavailableError, match=r"TransformersChatModel needs transformers"):
        TransformersChatModel()
    with pytest.raises(BackendUnavailableError, match=r"langgraph-tpo\[local\]"):
        TransformersReward("/nowhere")


@pytest.mark.parametrize(
    ("settings", "module", "extra"),
    [
        ({"policy_engine": "vllm", "policy_path": "m"}, "vllm", "vllm"),
        ({"reward": "math"}, "math_verify", "math"),
        ({"reward_path": "/models/rm"}, "transformers", "local"),
    ],
)
def test_each_backend_names_its_extra(
    monkeypatch: pytest.MonkeyPatch,
    no_tpo_env: None,
    settings: dict[str, str],
    module: str,
    extra: str,
) -> None:
    _block(monkeypatch, module)
    full = {"policy_factory": "testsupport.fake_backends:policy", **settings}
    if "policy_engine" in settings:
        full.pop("policy_factory")
    with pytest.raises(BackendUnavailableError, match=rf"langgraph-tpo\[{extra}\]"):
        build_models(BackendSettings(**full))
