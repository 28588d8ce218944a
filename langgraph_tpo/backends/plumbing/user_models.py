"""The user's own models: a policy or a reward from a ``module:function`` factory.

``--policy-factory pkg.models:policy`` (``TPO_POLICY_FACTORY``, ``policy_factory`` in a
config file or a Studio run) imports ``pkg.models`` and calls ``policy()``, which must
return a LangChain chat model (``BaseChatModel``): ChatOpenAI, ChatAnthropic, a Bedrock
model, a fine-tuned local model. ``--reward-factory pkg.models:reward`` calls ``reward()``,
or ``reward(policy)`` when the function has a required parameter (a judge built on the
policy), and must return what ``create_tpo_graph`` accepts as a reward: an object with
``async ascore_batch(pairs)``, a LangChain runnable, or a function
``(query, response) -> float``.

Every failure (bad spec, import error, missing attribute, not callable, a factory that
raises, a wrong return type) is a :class:`ConfigError` naming the factory, raised while the
models are built: before any model call.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable

from langgraph_tpo.errors import ConfigError
from langgraph_tpo.reward import BatchReward, as_batch_reward

SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def check_spec(setting: str, spec: str) -> None:
    """A ``module:function`` string, else ConfigError naming ``setting``."""
    if not SPEC.match(spec):
        raise ConfigError(f"{setting} must be 'module:function', got {spec!r}")


def import_attribute(setting: str, spec: str) -> Any:
    """Import ``module`` of a ``module:attr`` spec and return its ``attr`` (dotted
    attributes allowed); a bad spec, an import that fails or a missing attribute is a
    ConfigError naming ``setting``."""
    check_spec(setting, spec)
    module_name, _, attribute = spec.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or anything the module raises on import
        raise ConfigError(
            f"{setting} {spec!r}: cannot import {module_name!r}: {type(exc).__name__}: {exc}"
        ) from exc
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ConfigError(f"{setting} {spec!r}: {module_name!r} has no attribute {attribute!r}")
        target = getattr(target, part)
    return target


def load_factory(setting: str, spec: str) -> Callable[..., Any]:
    """Import ``module`` and return its callable ``function`` (dotted attributes allowed)."""
    target = import_attribute(setting, spec)
    attribute = spec.partition(":")[2]
    if not callable(target):
        raise ConfigError(
            f"{setting} {spec!r}: {attribute!r} is not callable ({type(target).__name__})"
        )
    return target


def _call(setting: str, spec: str, factory: Callable[..., Any], *args: Any) -> Any:
    try:
        return factory(*args)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"{setting} {spec!r} failed: {type(exc).__name__}: {exc}") from exc


def takes_an_argument(factory: Callable[..., Any]) -> bool:
    """True when ``factory`` has a required positional parameter (it wants the policy)."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # some builtins have no signature
        return False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return any(p.kind in positional and p.default is p.empty for p in parameters)


def policy_from_factory(spec: str) -> BaseChatModel:
    """The chat model ``spec``'s function returns."""
    setting = "policy_factory"
    policy = _call(setting, spec, load_factory(setting, spec))
    if not isinstance(policy, BaseChatModel):
        raise ConfigError(
            f"{setting} {spec!r} returned {type(policy).__name__}, not a LangChain chat model "
            "(BaseChatModel)"
        )
    return policy


def reward_from_factory(spec: str, policy: BaseChatModel) -> BatchReward:
    """The reward ``spec``'s function returns, given ``policy`` when it takes an argument."""
    setting = "reward_factory"
    factory = load_factory(setting, spec)
    args = (policy,) if takes_an_argument(factory) else ()
    reward = _call(setting, spec, factory, *args)
    if isinstance(reward, BaseChatModel):
        raise ConfigError(
            f"{setting} {spec!r} returned a chat model ({type(reward).__name__}), not a reward; "
            "to judge with it, return langgraph_tpo.backends.rewards.judge.JudgeReward(model)"
        )
    if not (isinstance(reward, (BatchReward, Runnable)) or callable(reward)):
        raise ConfigError(
            f"{setting} {spec!r} returned {type(reward).__name__}, not a reward: return an "
            "object with async ascore_batch(pairs), a LangChain runnable, or a function "
            "(query, response) -> float"
        )
    return as_batch_reward(reward)
