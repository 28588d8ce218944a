"""The graph LangGraph Studio serves (``langgraph.json`` points here).

``langgraph dev`` loads :func:`make_graph`, a graph factory. With no settings it runs the
embedded CPU default (SmolLM2 in-process, judged by itself, N=3, D=1, max_tokens=256).
The ``TPO_<NAME>`` environment variables of the backend settings (``TPO_POLICY_URL``,
``TPO_REWARD_URL``, ...) select other backends and those of the TPO settings set the
graph's defaults; the same names (lower case) in a run's context select them for that run
from the Studio UI. The context schema is derived from the two settings models, so each
of their fields shows in Studio with its description. A run's ``policy_factory`` or
``reward_factory`` (``module:function``) is imported and called in the server's process, so
a run's context can make the server run importable code: serve Studio only to people you
would let run code there.
"""

from __future__ import annotations

import json
from functools import lru_cache

from langgraph.graph.state import CompiledStateGraph
from langgraph_sdk.runtime import ServerRuntime
from pydantic import Field, create_model

from langgraph_tpo.assembly import assemble, resolve_settings
from langgraph_tpo.backends.factory import BackendSettings
from langgraph_tpo.backends.plumbing.balancer import split_urls
from langgraph_tpo.config import TPOConfig

# Backend settings a run's context cannot carry, and why.
NOT_IN_CONTEXT = {
    "api_key": "a secret: a run's context is stored with the thread and shown in Studio; "
    "set TPO_API_KEY in the server's environment",
}


def context_schema(
    config_model: type[TPOConfig] = TPOConfig,
    backend_model: type[BackendSettings] = BackendSettings,
) -> type[TPOConfig]:
    """The TPO settings plus the backend settings (all optional: unset keeps the server's
    environment), as Studio's run configuration shows them."""
    backend_fields = {
        name: (field.annotation | None, Field(None, description=field.description))
        for name, field in backend_model.model_fields.items()
        if name not in NOT_IN_CONTEXT
    }
    return create_model(
        "StudioContext",
        __base__=config_model,
        __doc__="TPO settings plus the backends, as Studio's run configuration shows them.",
        __module__=__name__,
        **backend_fields,
    )


StudioContext = context_schema()
BACKEND_FIELDS = tuple(n for n in BackendSettings.model_fields if n not in NOT_IN_CONTEXT)


@lru_cache(maxsize=8)
def graph_for(settings: tuple[tuple[str, object], ...]) -> CompiledStateGraph:
    """One graph per distinct backend settings, so models load once per server."""
    config, backends = resolve_settings(dict(settings))
    return assemble(config, backends, context_schema=StudioContext, name="tpo").graph


def make_graph(runtime: ServerRuntime) -> CompiledStateGraph:
    """Graph factory for ``langgraph dev``: backends from env, overridable per run."""
    context = getattr(runtime, "context", None) or {}
    if not isinstance(context, dict):
        context = context.model_dump(exclude_unset=True)
    chosen = tuple(sorted((k, _frozen(context[k])) for k in BACKEND_FIELDS if context.get(k)))
    return graph_for(chosen)


def _frozen(value: object) -> object:
    """A hashable stand-in for a setting's value: engine args as their JSON text, a list of
    URLs as one comma-separated string."""
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, list | tuple):
        return ",".join(split_urls(value))
    return value
