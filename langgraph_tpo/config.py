"""TPOConfig: the knobs of one TPO run, with the paper's defaults.

Defaults are fixed when the graph is created (``create_tpo_graph(config=...)``); any
field can be overridden for one run through LangGraph's runtime context::

    graph.invoke({"query": q}, context={"num_samples": 3, "mode": "revision"})

Only the fields passed in the context change; the rest keep the graph's defaults.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from langgraph_tpo.errors import ConfigError

Mode = Literal["tpo", "revision", "bon"]


class TPOConfig(BaseModel):
    """Settings of a TPO run. Paper defaults: N=5, D=2, temperature 0.7, top_p 0.95."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    num_samples: int = Field(
        5, ge=1, description="N: responses drawn by `sample` and by each `update`."
    )
    max_iterations: int = Field(
        2, ge=0, description="D: textual loss -> gradient -> update iterations at most."
    )
    temperature: float = Field(0.7, ge=0.0, description="Sampling temperature of the policy.")
    top_p: float = Field(0.95, gt=0.0, le=1.0, description="Nucleus sampling top_p.")
    max_tokens: int = Field(
        2048, ge=1, description="Max new tokens per policy generation (responses and critiques)."
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
    seed: int | None = Field(None, description="Sampling seed passed to the policy (null: random).")
    max_context_tokens: int = Field(
        2048,
        ge=16,
        description="Chosen and rejected responses are cut to this many tokens inside "
        "critique and update prompts (the reference implementation uses 2048).",
    )

    review_gradient: bool = Field(
        False,
        description="Pause after textual_gradient for a human to accept, edit or stop "
        "(LangGraph interrupt; needs a checkpointer).",
    )

    @field_validator("score_threshold")
    @classmethod
    def _finite_threshold(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("score_threshold must be a finite number or null")
        return value

    def with_overrides(self, overrides: Mapping[str, Any] | BaseModel | None) -> TPOConfig:
        """This config with the fields in ``overrides`` replaced (validated).

        Keys that are not TPOConfig fields (e.g. backend settings of a subclassed
        context schema) are ignored here.
        """
        if overrides is None:
            return self
        if isinstance(overrides, BaseModel):
            overrides = {k: getattr(overrides, k) for k in overrides.model_fields_set}
        ours = {k: v for k, v in dict(overrides).items() if k in TPOConfig.model_fields}
        return make_config({**self.model_dump(), **ours})


def make_config(values: TPOConfig | Mapping[str, Any] | None = None) -> TPOConfig:
    """Build a TPOConfig, turning validation failures into a ConfigError naming each field."""
    if isinstance(values, TPOConfig):
        return values
    try:
        return TPOConfig.model_validate(dict(values or {}))
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from exc


def _describe(exc: ValidationError) -> str:
    problems = [
        f"{'.'.join(str(p) for p in err['loc']) or 'config'}: {err['msg']} (got {err['input']!r})"
        for err in exc.errors()
    ]
    return "invalid TPO config: " + "; ".join(problems)
