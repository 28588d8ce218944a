"""Your own models from ``module:function`` factories: loading, the policy argument, errors."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from langgraph_tpo import ConfigError
from langgraph_tpo.backends.factory import BackendSettings, build_models
from langgraph_tpo.fakes import FakeNPolicy
from langgraph_tpo.reward import BatchReward
from langgraph_tpo.studio import StudioContext, make_graph

FACTORIES = '''
from langgraph_tpo.fakes import FakeBatchReward, FakeNPolicy

SEEN = []
NOT_CALLABLE = 42

def policy():
    return FakeNPolicy()

def words(query, response):
    return float(len(response.split()))

def plain_reward():
    return words

def judge(policy):
    SEEN.append(policy)
    return FakeBatchReward()

def optional_argument(policy=None):
    SEEN.append(policy)
    return FakeBatchReward()

def a_string():
    return "not a model"

def a_chat_model():
    return FakeNPolicy()

def raises():
    raise RuntimeError("no credentials")

class Holder:
    @staticmethod
    def policy():
        return FakeNPolicy()
'''
CHAT_MODEL = "my_factories:a_chat_model"


@pytest.fixture
def factories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> object:
    """An importable module ``my_factories`` with good and bad factories."""
    (tmp_path / "my_factories.py").write_text(textwrap.dedent(FACTORIES))
    (tmp_path / "broken_factories.py").write_text("import not_a_module_anywhere\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield __import__("my_factories")
    for name in ("my_factories", "broken_factories"):
        sys.modules.pop(name, None)


def test_policy_and_reward_come_from_their_factories(factories: object) -> None:
    policy, reward = build_models(
        BackendSettings(policy_factory="my_factories:policy", reward_factory="my_factories:judge")
    )
    assert isinstance(policy, FakeNPolicy) and isinstance(reward, BatchReward)
    assert [policy] == factories.SEEN  # a factory with a required parameter gets the policy


async def test_a_plain_function_reward_is_wrapped(factories: object) -> None:
    _, reward = build_models(
        BackendSettings(
            policy_factory="my_factories:policy", reward_factory="my_factories:plain_reward"
        )
    )
    assert await reward.ascore_batch([([{"role": "user", "content": "q"}], "two words")]) == [2.0]


def test_optional_parameters_are_not_filled_and_attributes_may_be_dotted(
    factories: object,
) -> None:
    policy, _ = build_models(
        BackendSettings(
            policy_factory="my_factories:Holder.policy",
            reward_factory="my_factories:optional_argument",
        )
    )
    assert isinstance(policy, FakeNPolicy) and factories.SEEN == [None]


def test_without_a_reward_factory_the_policy_judges(factories: object) -> None:
    from langgraph_tpo.backends.rewards.judge import JudgeReward

    policy, reward = build_models(BackendSettings(policy_factory="my_factories:policy"))
    assert isinstance(reward, JudgeReward) and reward.chat_model is policy


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"policy_factory": "my_factories.policy"}, "must be 'module:function'"),
        ({"policy_factory": "broken_factories:policy"}, "cannot import 'broken_factories'"),
        ({"policy_factory": "no_such_module_xyz:policy"}, "cannot import 'no_such_module_xyz'"),
        ({"policy_factory": "my_factories:missing"}, "has no attribute 'missing'"),
        ({"policy_factory": "my_factories:NOT_CALLABLE"}, "is not callable (int)"),
        ({"policy_factory": "my_factories:a_string"}, "returned str, not a LangChain chat model"),
        ({"policy_factory": "my_factories:raises"}, "failed: RuntimeError: no credentials"),
        (
            {"policy_factory": "my_factories:policy", "reward_factory": "my_factories:a_string"},
            "returned str, not a reward",
        ),
        (
            {"policy_factory": "my_factories:policy", "reward_factory": CHAT_MODEL},
            "returned a chat model (FakeNPolicy), not a reward",
        ),
        (
            {"policy_factory": "my_factories:policy", "policy_url": "http://h/v1"},
            "policy_factory cannot be combined with policy_url",
        ),
        (
            {"reward_factory": "my_factories:judge", "judge": True},
            "reward_factory cannot be combined with judge",
        ),
    ],
)
def test_a_bad_factory_is_a_config_error_naming_it(
    factories: object, settings: dict, message: str
) -> None:
    settings = {"policy_model": "m", **settings}
    with pytest.raises(ConfigError) as caught:
        build_models(BackendSettings(**settings))
    assert message in str(caught.value)
    named = [v for k, v in settings.items() if k.endswith("_factory")]
    assert any(spec in str(caught.value) for spec in named) or "combined" in message


def test_factories_are_read_from_the_environment(
    factories: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TPO_POLICY_FACTORY", "my_factories:policy")
    monkeypatch.setenv("TPO_REWARD_FACTORY", "my_factories:judge")
    settings = BackendSettings.from_env()
    assert settings.policy_factory == "my_factories:policy" and not settings.is_embedded
    policy, _ = build_models(settings)
    assert [policy] == factories.SEEN


def test_studio_runs_pick_factories_from_their_context(factories: object) -> None:
    assert {"policy_factory", "reward_factory"} <= set(StudioContext.model_fields)
    context = {"policy_factory": "my_factories:policy", "reward_factory": "my_factories:judge"}
    graph = make_graph(SimpleNamespace(context=context))
    out = graph.invoke({"query": "q"}, context={"num_samples": 2, "max_iterations": 1})
    assert out["stop_reason"] == "max_iterations" and len(out["candidates"]) == 4
    assert isinstance(factories.SEEN[0], FakeNPolicy)
