"""TPOConfig: the knobs of one TPO run, with the paper's defaults.

Defaults are fixed when the graph is created (``create_tpo_graph(config=...)``); any
field can be overridden for one run through LangGraph's runtime context::

    graph.invoke({"query": q}, context={"num_samples": 3, "mode": "revision"})

Only the fields passed in the context change; the rest keep the graph's defaults.

This model (with :class:`~langgraph_tpo.backends.factory.BackendSettings`) is the one
place a setting is declared: the ``tpo`` command-line flags, the ``--config`` file keys,
the ``TPO_<NAME>`` environment variables and Studio's run configuration are derived from
its fields and their descriptions.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from langgraph_tpo.errors import ConfigError

Mode = Literal["tpo", "revision", "bon"]
ExtractionRule = Literal["delimited", "lenient", "strict"]
Settings = TypeVar("Settings", bound=BaseModel)
ENV_PREFIX = "TPO_"

# The CPU-sized defaults of the embedded model (SmolLM2-135M in-process): what `tpo run`,
# `tpo serve` and Studio apply when no backend is named, and what ``TPOConfig.cpu()`` gives
# the Python API. Small enough to finish on 2 cores in under 3 minutes.
# repetition_penalty 1.1 (the paper: none): over 48 samples of 256 tokens (16 prompts, N=3)
# none looped with 1.0, 1.1 or 1.2, and SmolLM2 judging itself scored 1.1 highest (3.99
# against 3.86 and 3.82; docs/benchmarks.md section 10).
EMBEDDED_DEFAULTS: dict[str, Any] = {
    "num_samples": 3,
    "max_iterations": 1,
    "max_tokens": 256,
    "repetition_penalty": 1.1,
}


def _openai_penalty(name: str, effect: str) -> Any:
    """A penalty field with OpenAI's range and semantics (off, so not sent, when null)."""
    return Field(
        None,
        ge=-2.0,
        le=2.0,
        allow_inf_nan=False,
        description=f"OpenAI {name}, -2.0..2.0: {effect} (negative favours repeats); null: "
        "not sent. The paper's reference uses none.",
    )


class TPOConfig(BaseModel):
    """Settings of a TPO run. Paper defaults: N=5, D=2, temperature 0.7, top_p 0.95."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, strict=True)

    num_samples: int = Field(
        5, ge=1, description="N: responses drawn by `sample` and by each `update`."
    )
    max_iterations: int = Field(
        2, ge=0, description="D: textual loss -> gradient -> update iterations at most."
    )
    temperature: float = Field(0.7, ge=0.0, description="Sampling temperature of the policy.")
    top_p: float = Field(0.95, gt=0.0, le=1.0, description="Nucleus sampling top_p.")
    max_tokens: int = Field(
        2048,
        ge=1,
        description="Max new tokens of a response (sample and update); the reference uses 2048.",
    )
    critique_max_tokens: int | None = Field(
        None,
        ge=1,
        description="Max new tokens of a critique (textual_loss) and of the suggestions "
        "(textual_gradient); null: the same as max_tokens. The reference allows up to 8192.",
    )
    score_threshold: float | None = Field(
        None, description="Stop as soon as the best score reaches this value (off when null)."
    )
    patience: int | None = Field(
        None,
        ge=1,
        description="Stop when the best score has not improved for this many iterations "
        "(off when null).",
    )
    mode: Mode = Field(
        "tpo",
        description="tpo: critique chosen against rejected; revision: critique chosen "
        "alone; bon: best-of-N, no loop.",
    )
    seed: int | None = Field(
        None,
        description="Sampling seed passed to the policy; update k uses seed + k (null: random).",
    )
    max_context_tokens: int = Field(
        2048,
        ge=16,
        description="Chosen and rejected responses are cut to this many tokens inside "
        "critique and update prompts (the reference implementation uses 2048).",
    )

    context_window: int | None = Field(
        None,
        ge=1,
        description="The policy's context window in tokens: a conversation that cannot fit "
        "it with a reply of max_tokens is refused before any model call. Null: what the "
        "policy reports (in-process models from their config, vLLM servers from /v1/models); "
        "set it for a model of your own that does not say.",
    )
    max_total_tokens: int | None = Field(
        None,
        ge=1,
        description="Budget: once the policy's prompt and completion tokens of this run (as the "
        "backend reports them) reach this many, the iteration in flight finishes and the run "
        "stops with stop_reason 'budget', returning the best response so far (null: no cap).",
    )
    max_seconds: float | None = Field(
        None,
        gt=0.0,
        allow_inf_nan=False,
        description="Budget: once this many seconds have passed since the run's `sample` "
        "started (wall clock, a resumed run counting from its first start), the iteration in "
        "flight finishes and the run stops with stop_reason 'budget', returning the best "
        "response so far (null: no cap).",
    )

    frequency_penalty: float | None = _openai_penalty(
        "frequency_penalty",
        "each token's logit is lowered by this times the number of times the token already "
        "appears in the response",
    )
    presence_penalty: float | None = _openai_penalty(
        "presence_penalty",
        "each token already in the response has its logit lowered by this once",
    )
    repetition_penalty: float | None = Field(
        None,
        gt=0.0,
        allow_inf_nan=False,
        description="vLLM / transformers repetition_penalty, > 0, multiplicative: the logit of "
        "each token already in the prompt or response is divided by it (multiplied when "
        "negative); 1.0 changes nothing, above 1.0 discourages repeats; null: not sent. The "
        "paper's reference uses none.",
    )

    prompt_set: str | None = Field(
        None,
        description="Prompt set: 'paper' (the paper's information flow) or 'compact' "
        "(shorter prompts); in the CLI also a YAML/TOML file as `tpo prompts show` prints "
        "it; null: the graph's set (default paper).",
    )
    extraction: ExtractionRule = Field(
        "delimited",
        description="How the new response is read from an update output. delimited (the "
        "default): the last delimited block, else the text after a last opening delimiter; "
        "outputs without one are dropped. strict (the reference's rule): the text after the "
        "first opening delimiter, others dropped. lenient: as delimited, else what a lone "
        "closing delimiter marks, else the whole text (commentary included).",
    )
    drop_loops: bool = Field(
        True,
        description="Drop responses that are mostly repetition (half their lines or word "
        "4-grams repeat earlier ones) in sample and update, counted as 'degenerate'; "
        "sample keeps them only when every output is degenerate. The reference keeps them: "
        "false reproduces it.",
    )

    review_gradient: bool = Field(
        False,
        description="Pause after textual_gradient for a human to accept, edit or stop "
        "(LangGraph interrupt; needs a checkpointer).",
    )

    def __init__(self, **values: Any) -> None:
        """Validate ``values`` strictly: a value that is not what its field says (the string
        ``"0"`` or ``True`` for a count) is a :class:`ConfigError` naming the field. Ints
        are accepted for float fields and None for optional ones. LangGraph builds a run's
        context this way, so a bad ``context={...}`` fails before any node runs."""
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise config_error(exc, "TPO config") from exc

    @field_validator("score_threshold")
    @classmethod
    def _finite_threshold(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("score_threshold must be a finite number or null")
        return value

    @classmethod
    def cpu(cls, **overrides: Any) -> TPOConfig:
        """The CPU-sized preset for the embedded model, as ``tpo run`` uses it.

        Reads :data:`EMBEDDED_DEFAULTS` (N=3, D=1, ``max_tokens`` 256,
        ``repetition_penalty`` 1.1; every other field keeps its paper default) and then
        ``overrides``. ``TPOConfig()`` alone has the paper's defaults (N=5, D=2,
        ``max_tokens`` 2048): right for a GPU server, many minutes per query on a laptop::

            graph = create_tpo_graph(policy, reward, TPOConfig.cpu())
            graph = create_tpo_graph(policy, reward, TPOConfig.cpu(max_tokens=128))

        An invalid override is a :class:`ConfigError` naming the field.
        """
        return cls(**{**EMBEDDED_DEFAULTS, **overrides})

    def with_overrides(self, overrides: Mapping[str, Any] | BaseModel | None) -> TPOConfig:
        """This config with the fields in ``overrides`` replaced (validated).

        Keys that are not TPOConfig fields (e.g. backend settings of a subclassed
        context schema) are ignored here.
        """
        if overrides is None:
            return self
        if isinstance(overrides, BaseModel):
            overrides = {k: getattr(overrides, k) for k in overrides.model_fields_set}
        model = type(self)
        ours = {k: v for k, v in dict(overrides).items() if k in model.model_fields}
        if not ours:
            return self
        return make_config({**self.model_dump(), **ours}, model)


def make_config(
    values: TPOConfig | Mapping[str, Any] | None = None, model: type[TPOConfig] = TPOConfig
) -> TPOConfig:
    """Build a TPOConfig (or ``model``, a subclass), turning validation failures into a
    ConfigError naming each field."""
    if isinstance(values, model):
        return values
    return validated(model, values, "TPO config")


def validated(model: type[Settings], values: Mapping[str, Any] | None, what: str) -> Settings:
    """``model`` built from ``values``; a ConfigError naming each bad field otherwise."""
    try:
        return model.model_validate(dict(values or {}))
    except ValidationError as exc:
        error = config_error(exc, what)
        # a ConfigError the model raised keeps its cause: the ValidationError naming fields
        raise error from (error.__cause__ or exc)


def config_error(exc: ValidationError, what: str) -> ConfigError:
    """The :class:`ConfigError` for a failed validation: a ConfigError a validator raised
    (a rule between fields, which names its settings), else one naming each bad field."""
    for err in exc.errors():
        inner = (err.get("ctx") or {}).get("error")
        if isinstance(inner, ConfigError):
            return inner
    return ConfigError(_describe(exc, what))


def env_name(field: str) -> str:
    """The environment variable of a setting: ``num_samples`` -> ``TPO_NUM_SAMPLES``."""
    return ENV_PREFIX + field.upper()


def settings_from_env(
    model: type[BaseModel], environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The ``TPO_<NAME>`` variables that are set (non-empty) for ``model``'s fields, keyed
    by field name and converted from text to the field's type (``TPO_NUM_SAMPLES=3`` is the
    int 3, ``TPO_JUDGE=true`` True), as the models validate strictly; text that does not
    convert is a :class:`ConfigError` naming the variable."""
    environ = os.environ if environ is None else environ
    return {
        name: _from_text(name, field.annotation, environ[env_name(name)])
        for name, field in model.model_fields.items()
        if environ.get(env_name(name))
    }


def _from_text(name: str, annotation: Any, text: str) -> Any:
    adapter = TypeAdapter(annotation)
    try:
        return adapter.validate_strings(text)
    except ValidationError as exc:
        if text.lstrip().startswith(("{", "[")):  # an object or list setting, given as JSON
            try:
                return adapter.validate_json(text)
            except ValidationError:
                pass
        message = exc.errors()[0]["msg"]
        raise ConfigError(f"{env_name(name)}={text!r}: {message}") from exc


def _describe(exc: ValidationError, what: str) -> str:
    problems = [
        f"{'.'.join(str(p) for p in err['loc']) or 'config'}: {err['msg']} (got {err['input']!r})"
        for err in exc.errors()
    ]
    return f"invalid {what}: " + "; ".join(problems)
