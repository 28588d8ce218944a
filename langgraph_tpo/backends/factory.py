"""Choose the policy and the reward from plain settings (CLI flags, env vars, Studio).

With nothing set, both are the embedded default: SmolLM2-135M-Instruct in-process on
CPU as the policy, and the same loaded model as an LLM judge for the reward.
``policy_factory``/``reward_factory`` (``module:function``) bring any other model
(:mod:`langgraph_tpo.backends.plumbing.user_models`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, Literal, Self
from urllib.parse import urlparse

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from langgraph_tpo.backends.plumbing.balancer import split_urls
from langgraph_tpo.backends.plumbing.extras import require
from langgraph_tpo.backends.plumbing.user_models import (
    check_spec,
    policy_from_factory,
    reward_from_factory,
)
from langgraph_tpo.config import config_error, settings_from_env, validated
from langgraph_tpo.errors import ConfigError
from langgraph_tpo.reward import BatchReward, WeightedReward

URL_FIELDS = ("policy_url", "reward_url")


class BackendSettings(BaseModel):
    """Where the policy and reward come from. Empty fields mean the embedded default.

    With :class:`~langgraph_tpo.config.TPOConfig`, the one place a setting is declared:
    the command-line flags, config-file keys, ``TPO_<NAME>`` environment variables and
    Studio fields are derived from these fields and their descriptions.
    """

    model_config = ConfigDict(extra="forbid", strict=True)  # judge = "yes" is an error

    policy_url: str | list[str] | None = Field(
        None,
        description="OpenAI-compatible policy server (vLLM), e.g. http://127.0.0.1:8000/v1. "
        "Several servers of the same model: a list, URLs separated by commas, or the flag "
        "repeated; each request goes to the least busy one.",
    )
    policy_model: str | None = Field(None, description="Served policy model name at policy_url.")
    policy_path: str | None = Field(
        None,
        description="Local policy model (HF directory or .gguf) run in-process with "
        "transformers, or, with policy_engine vllm, the model vLLM loads (a directory or a "
        "Hugging Face model id).",
    )
    policy_engine: Literal["transformers", "vllm"] | None = Field(
        None,
        description="What runs policy_path in-process: transformers (default) or vllm (vLLM's "
        "async engine in this process; the requests of concurrent runs are batched together).",
    )
    engine_args: dict[str, Any] | None = Field(
        None,
        description="vLLM engine args for policy_engine vllm: a JSON object of AsyncEngineArgs "
        "fields, such as tensor_parallel_size or dtype.",
    )
    reward_url: str | list[str] | None = Field(
        None,
        description="vLLM reward server (vllm serve RM --runner pooling), scored through "
        "/classify. Several: a list, URLs separated by commas, or the flag repeated.",
    )
    reward_model: str | None = Field(None, description="Served reward model name at reward_url.")
    reward_path: str | None = Field(
        None,
        description="Local reward model directory: scored in-process with transformers, or, "
        "with reward_url (optional there), the tokenizer whose chat template renders the "
        "inputs here so a step's candidates go in one request; without it the server renders "
        "each candidate's template.",
    )
    reward_device: str | None = Field(
        None,
        description="Device of the in-process reward model (reward_path): cpu, cuda, cuda:N, "
        "mps. Default: cuda when a GPU is visible, else cpu.",
    )
    reward_dtype: str | None = Field(
        None,
        description="Weights dtype of the in-process reward model: float32, bfloat16, "
        "float16. Default: bfloat16 on a GPU, float32 on CPU.",
    )
    judge: bool = Field(
        False,
        description="Score with the policy as an LLM judge (the default when no reward model "
        "is given; not together with reward_url or reward_path).",
    )
    policy_factory: str | None = Field(
        None,
        description="Your own policy: module:function returning a LangChain chat model "
        "(e.g. mypkg.models:policy; the module must be importable).",
    )
    reward_factory: str | None = Field(
        None,
        description="Your own reward: module:function returning a reward (an object with async "
        "ascore_batch, a runnable or a function (query, response) -> float); a function with a "
        "required parameter is given the policy.",
    )
    reward: Literal["math"] | None = Field(
        None,
        description="A verifier reward that checks answers against the data row: math (1.0 "
        "when the final answer equals the row's reference, MATH-500's answer; needs the 'math' "
        "extra). Alone it is the reward; with reward_url, reward_path, reward_factory or judge "
        "the two scores are summed with reward_weights.",
    )
    reward_weights: str | None = Field(
        None,
        description="Weights of the reward model and the verifier (--reward) in their sum: "
        "MODEL,VERIFIER, e.g. 1,10. Default: 1,1.",
    )
    api_key: str | None = Field(
        None,
        repr=False,
        description="API key for policy_url (else $OPENAI_API_KEY). Never printed or written "
        "to any output or results file.",
    )

    @field_validator("engine_args", mode="before")
    @classmethod
    def _engine_args_object(cls, value: Any) -> Any:
        """A JSON object given as text (a flag, an env var) becomes a dict."""
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else None
            except json.JSONDecodeError as exc:
                raise ValueError(f"not valid JSON ({exc})") from exc
        if value is not None and not isinstance(value, dict):
            raise ValueError(
                'must be a JSON object of vLLM engine args, e.g. {"tensor_parallel_size": 2}'
            )
        return value

    @field_validator(*URL_FIELDS, mode="before")
    @classmethod
    def _one_string_of_urls(cls, value: Any) -> Any:
        """A list of URLs (config file, repeated flag, Studio) is kept as one
        comma-separated string."""
        if isinstance(value, list | tuple):
            return ",".join(split_urls(value)) or None
        return value

    @property
    def policy_urls(self) -> list[str]:
        """Every policy server ``policy_url`` names."""
        return split_urls(self.policy_url)

    @property
    def reward_urls(self) -> list[str]:
        """Every reward server ``reward_url`` names."""
        return split_urls(self.reward_url)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, /, **overrides: Any) -> Self:
        """Settings from ``TPO_POLICY_URL``, ``TPO_REWARD_URL``, ... (of ``environ``,
        default the process's) then ``overrides``."""
        values: dict[str, Any] = settings_from_env(cls, environ)
        values.update({k: v for k, v in overrides.items() if v not in (None, "", [], ())})
        return validated(cls, values, "backend settings")

    @property
    def is_embedded(self) -> bool:
        return not (self.policy_url or self.policy_path or self.policy_factory)

    def __init__(self, **values: Any) -> None:
        """Validate ``values`` and the rules between fields: a :class:`ConfigError` naming
        the setting that is wrong or conflicts (as ``TPOConfig`` does)."""
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise config_error(exc, "backend settings") from exc

    @model_validator(mode="after")
    def _check_combinations(self) -> Self:
        """The rules between fields, checked whenever settings are built."""
        # (judge with reward_factory: reported by _validate_factories)
        conflicting = [name for name in ("reward_url", "reward_path") if getattr(self, name)]
        if self.judge and conflicting:
            flags = " and ".join(f"--{name.replace('_', '-')}" for name in conflicting)
            raise ConfigError(
                f"judge conflicts with {' and '.join(conflicting)} ({flags}): the judge scores "
                "with the policy, a reward model scores with that model; choose one"
            )
        self._validate_engine()
        for name in URL_FIELDS:
            urls = split_urls(getattr(self, name))
            for url in urls:
                if urlparse(url).scheme not in ("http", "https"):
                    raise ConfigError(f"{name} must be an http(s) URL, got {url!r}")
            if len(set(urls)) != len(urls):
                raise ConfigError(f"{name} names a server twice: {getattr(self, name)!r}")
        if self.policy_url and not self.policy_model:
            raise ConfigError("policy_url needs policy_model (the served model name)")
        if self.reward_url and not self.reward_model:
            raise ConfigError("reward_url needs reward_model (the served model name)")
        self._validate_reward_placement()
        self._validate_factories()
        self._validate_weights()
        return self

    def _validate_weights(self) -> None:
        if self.reward_weights is None:
            return
        if not self.reward or not self.has_reward_model:
            raise ConfigError(
                "reward_weights weigh a reward model against a verifier: set reward (e.g. "
                "math) and one of reward_url, reward_path, reward_factory, judge"
            )
        reward_weights(self.reward_weights)

    @property
    def has_reward_model(self) -> bool:
        """Whether a reward model (or the judge) is named, as opposed to the default judge."""
        return bool(self.reward_url or self.reward_path or self.reward_factory or self.judge)

    def _validate_reward_placement(self) -> None:
        from langgraph_tpo.backends.rewards.transformers_reward import check_device, check_dtype

        if self.reward_device:
            check_device(self.reward_device)
        if self.reward_dtype:
            check_dtype(self.reward_dtype)

    def _validate_factories(self) -> None:
        """A factory replaces the other settings of its model, so they cannot be combined."""
        for factory, others in (
            ("policy_factory", ("policy_url", "policy_path", "policy_engine", "engine_args")),
            (
                "reward_factory",
                ("reward_url", "reward_path", "reward_device", "reward_dtype", "judge"),
            ),
        ):
            spec = getattr(self, factory)
            if not spec:
                continue
            check_spec(factory, spec)
            given = [name for name in others if getattr(self, name)]
            if given:
                raise ConfigError(f"{factory} cannot be combined with {', '.join(given)}")

    def _validate_engine(self) -> None:
        if self.policy_engine == "vllm" and not self.policy_path:
            raise ConfigError(
                "policy_engine 'vllm' needs policy_path: the model vLLM loads in-process "
                "(a local directory or a Hugging Face model id)"
            )
        if self.policy_engine == "vllm" and self.policy_url:
            raise ConfigError(
                "policy_engine 'vllm' runs the policy in-process; it cannot be combined with "
                "policy_url (a server). Set one of them"
            )
        if self.engine_args and self.policy_engine != "vllm":
            raise ConfigError("engine_args are vLLM engine args: set policy_engine 'vllm'")


def build_policy(settings: BackendSettings) -> BaseChatModel:
    """The policy chat model the settings name."""
    if settings.policy_factory:
        return policy_from_factory(settings.policy_factory)
    if settings.policy_url:
        from langgraph_tpo.backends.servers.vllm_server import vllm_chat_model

        return vllm_chat_model(
            settings.policy_url, settings.policy_model or "", api_key=settings.api_key
        )
    if settings.policy_engine == "vllm":
        require("vllm", "vllm", what="in-process vLLM (policy_engine 'vllm')")
        from langgraph_tpo.backends.inprocess.vllm_inprocess import VLLMChatModel, import_vllm

        import_vllm()  # a clear error now when vllm is missing, not at the first call
        return VLLMChatModel(
            model=settings.policy_path or "", engine_args=settings.engine_args or {}
        )
    require_local(settings.policy_path, "the in-process transformers policy")
    from langgraph_tpo.backends.inprocess.transformers_chat import TransformersChatModel

    return TransformersChatModel(model_path=settings.policy_path)


def require_local(model_path: str | None, what: str) -> None:
    """BackendUnavailableError naming ``langgraph-tpo[local]`` when torch or transformers is
    missing (and gguf, for the embedded default or a ``.gguf`` file), before any model loads."""
    modules = ["torch", "transformers"]
    if model_path is None or model_path.endswith(".gguf"):
        modules.append("gguf")
    require("local", *modules, what=what)


def reward_weights(text: str) -> tuple[float, float]:
    """``"1,10"`` as the weights (model, verifier); a ConfigError names what is wrong."""
    parts = [p.strip() for p in text.split(",")]
    try:
        weights = tuple(float(p) for p in parts)
    except ValueError:
        weights = ()
    if len(weights) != 2 or not all(math.isfinite(w) for w in weights):
        raise ConfigError(
            f"reward_weights must be two numbers MODEL,VERIFIER such as 1,10; got {text!r}"
        )
    return weights[0], weights[1]


def build_reward(settings: BackendSettings, policy: BaseChatModel) -> BatchReward:
    """The reward the settings name: a reward model (an LLM judge over ``policy`` when none
    is given), a verifier (``reward``), or their weighted sum."""
    if not settings.reward:
        return build_reward_model(settings, policy)
    require("math", "math_verify", what="the math verifier reward (reward 'math')")
    from langgraph_tpo.backends.rewards.math_verifier import MathVerifierReward

    verifier = MathVerifierReward()
    if not settings.has_reward_model:
        return verifier
    model_weight, verifier_weight = reward_weights(settings.reward_weights or "1,1")
    model = build_reward_model(settings, policy)
    return WeightedReward([(model, model_weight), (verifier, verifier_weight)])


def build_reward_model(settings: BackendSettings, policy: BaseChatModel) -> BatchReward:
    """The reward model the settings name; an LLM judge over ``policy`` when none is given."""
    if settings.reward_factory:
        return reward_from_factory(settings.reward_factory, policy)
    if settings.reward_url:
        from langgraph_tpo.backends.servers.vllm_server import VLLMServerReward

        return VLLMServerReward(
            settings.reward_url,
            settings.reward_model or "",
            tokenizer_path=settings.reward_path,
            api_key=settings.api_key,
        )
    if settings.reward_path:
        require("local", "torch", "transformers", what="the in-process reward model")
        from langgraph_tpo.backends.rewards.transformers_reward import TransformersReward

        return TransformersReward(
            settings.reward_path, device=settings.reward_device, dtype=settings.reward_dtype
        )
    from langgraph_tpo.backends.rewards.judge import JudgeReward

    # a small judge (the embedded SmolLM2) sometimes answers without a number at all
    return JudgeReward(policy, unreadable="lowest")


def build_models(settings: BackendSettings | None = None) -> tuple[BaseChatModel, BatchReward]:
    """The policy and the reward that ``settings`` (default: the environment) name."""
    settings = settings or BackendSettings.from_env()
    policy = build_policy(settings)
    return policy, build_reward(settings, policy)
