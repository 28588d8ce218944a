"""How the backend settings choose between the vLLM reward server's two request shapes
(the requests themselves are tested against a real server in tests/integration)."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_openai import ChatOpenAI

from langgraph_tpo.backends.factory import BackendSettings, build_policy, build_reward
from langgraph_tpo.backends.servers.vllm_server import VLLMServerReward
from langgraph_tpo.errors import ConfigError


def test_reward_url_and_model_are_enough() -> None:
    settings = BackendSettings(reward_url="http://127.0.0.1:9", reward_model="org/rm")
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


def test_several_urls_from_flags_env_and_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from langgraph_tpo.backends.servers.multi_server import BalancedChatModel
    from langgraph_tpo.cli.options import CommandSettings
    from langgraph_tpo.policy import supports_n

    config = tmp_path / "tpo.toml"
    config.write_text('policy_url = ["http://a:1/v1", "http://b:2/v1"]\npolicy_model = "m"\n')
    _, settings = CommandSettings({}, config).resolve()
    assert settings.policy_urls == ["http://a:1/v1", "http://b:2/v1"]
    flags = {"policy_url": ["http://c:3/v1,http://d:4/v1", "http://e:5"]}
    _, settings = CommandSettings(flags, config).resolve()
    assert settings.policy_urls == ["http://c:3/v1", "http://d:4/v1", "http://e:5"]  # flags win

    monkeypatch.setenv("TPO_REWARD_URL", "http://r1:8001, http://r2:8001")
    monkeypatch.setenv("TPO_REWARD_MODEL", "rm")
    env = BackendSettings.from_env()
    assert env.reward_urls == ["http://r1:8001", "http://r2:8001"]
    reward = build_reward(env, policy=None)  # type: ignore[arg-type]
    assert isinstance(reward, VLLMServerReward)
    assert reward.balancer.urls == ["http://r1:8001", "http://r2:8001"]

    policy = build_policy(settings)
    assert isinstance(policy, BalancedChatModel) and supports_n(policy)
    assert policy.balancer.urls == ["http://c:3/v1", "http://d:4/v1", "http://e:5/v1"]
    assert isinstance(build_policy(BackendSettings(policy_url="http://a:1", policy_model="m")),
                      ChatOpenAI)  # fmt: skip


@pytest.mark.parametrize(
    "urls,message",
    [
        ("http://a:1,ftp://b:2", "policy_url must be an http(s) URL, got 'ftp://b:2'"),
        ("http://a:1/v1,http://a:1/v1", "policy_url names a server twice"),
    ],
)
def test_bad_url_among_several_is_named(urls: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        BackendSettings(policy_url=urls, policy_model="m")
