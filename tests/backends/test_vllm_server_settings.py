"""How the backend settings choose between the vLLM reward server's two request shapes
(the requests themselves are tested against a real server in tests/integration)."""

from __future__ import annotations

from pathlib import Path

import pytest

from langgraph_tpo.backends.factory import BackendSettings, build_reward
from langgraph_tpo.backends.vllm_server import VLLMServerReward
from langgraph_tpo.errors import ConfigError


def test_reward_url_and_model_are_enough() -> None:
    settings = BackendSettings(reward_url="http://127.0.0.1:9", reward_model="org/rm")
    settings.validate()
    reward = build_reward(settings, policy=None)  # type: ignore[arg-type]
    assert isinstance(reward, VLLMServerReward)
    assert not reward.renders_locally and reward.tokenizer_path is None


def test_reward_path_with_url_renders_locally(tiny_rm_dir: Path) -> None:
    settings = BackendSettings(
        reward_url="http://127.0.0.1:9", reward_model="rm", reward_path=str(tiny_rm_dir)
    )
    reward = build_reward(settings, policy=None)  # type: ignore[arg-type]
    assert isinstance(reward, VLLMServerReward)
    assert reward.renders_locally and reward.tokenizer_path == tiny_rm_dir
    # a served name that is a local directory doubles as the tokenizer
    assert VLLMServerReward("http://h:1", str(tiny_rm_dir)).renders_locally


def test_bad_reward_server_settings_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a directory"):
        VLLMServerReward("http://h:1", "rm", tokenizer_path=tmp_path / "missing")
    with pytest.raises(ConfigError, match="max_connections"):
        VLLMServerReward("http://h:1", "rm", max_connections=0)
