"""The graph LangGraph Studio serves (``langgraph.json`` points here).

``langgraph dev`` loads :func:`make_graph`, a graph factory. With no settings it runs the
embedded CPU default (SmolLM2 in-process, judged by itself, N=3, D=1, max_tokens=256).
Environment variables (``TPO_POLICY_URL``, ``TPO_POLICY_MODEL``, ``TPO_REWARD_URL``,
``TPO_REWARD_MODEL``, ``TPO_REWARD_PATH``, ``TPO_POLICY_PATH``, ``TPO_JUDGE``,
``TPO_API_KEY``) select other backends; the same names (lower case) in a run's context
select them for that run from the Studio UI, next to every TPOConfig field.
"""

from __future__ import annotations

from functools import lru_cache

from langgraph.graph.state import CompiledStateGraph
from langgraph_sdk.runtime import ServerRuntime
from pydantic import Field

from langgraph_tpo.backends.factory import EMBEDDED_DEFAULTS, BackendSettings, build_models
from langgraph_tpo.config import TPOConfig
from langgraph_tpo.graph import create_tpo_graph

BACKEND_FIELDS = (
    "policy_url",
    "policy_model",
    "policy_path",
    "reward_url",
    "reward_model",
    "reward_path",
    "judge",
)


class StudioContext(TPOConfig):
    """TPO settings plus the backends, as Studio's run configuration shows them."""

    policy_url: str | None = Field(
        None, description="OpenAI-compatible policy server (vLLM), e.g. http://host:8000/v1"
    )
    policy_model: str | None = Field(None, description="Served policy model name")
    policy_path: str | None = Field(None, description="Local policy model run in-process")
    reward_url: str | None = Field(None, description="vLLM reward server (/classify)")
    reward_model: str | None = Field(None, description="Served reward model name")
    reward_path: str | None = Field(
        None, description="Local reward model dir (or its tokenizer, with reward_url)"
    )
    judge: bool | None = Field(None, description="Score with the policy as an LLM judge")


@lru_cache(maxsize=8)
def graph_for(settings: tuple[tuple[str, object], ...]) -> CompiledStateGraph:
    """One graph per distinct backend settings, so models load once per server."""
    backends = BackendSettings.from_env(**dict(settings))
    policy, reward = build_models(backends)
    defaults = EMBEDDED_DEFAULTS if backends.is_embedded else {}
    return create_tpo_graph(policy, reward, defaults, context_schema=StudioContext, name="tpo")


def make_graph(runtime: ServerRuntime) -> CompiledStateGraph:
    """Graph factory for ``langgraph dev``: backends from env, overridable per run."""
    context = getattr(runtime, "context", None) or {}
    if not isinstance(context, dict):
        context = context.model_dump(exclude_unset=True)
    chosen = tuple(sorted((k, context[k]) for k in BACKEND_FIELDS if context.get(k)))
    return graph_for(chosen)
