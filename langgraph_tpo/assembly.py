"""From settings to a running TPO graph: the one place every entry point builds a run.

``tpo run``, ``tpo eval``, ``tpo serve``, the Studio graph and the LangGraph server route
all go through here:

1. :func:`resolve_settings` layers the settings, later wins: the embedded CPU defaults
   (:data:`~langgraph_tpo.config.EMBEDDED_DEFAULTS`, only when the backends are the
   embedded model), the ``TPO_<NAME>`` environment variables, then what the caller was
   given (a config file and flags, a request, a Studio run), and checks the choices that
   would otherwise pass in silence.
2. :func:`assemble` turns a config and backend settings into the policy, the reward and
   the compiled graph (:class:`Assembly`).
3. :func:`run_events` runs a graph and reports its progress as typed events, for a
   terminal, a server or a test to show.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import RetryPolicy

from langgraph_tpo.backends.factory import BackendSettings, build_models
from langgraph_tpo.config import EMBEDDED_DEFAULTS, TPOConfig, make_config, settings_from_env
from langgraph_tpo.errors import ConfigError
from langgraph_tpo.graph import create_tpo_graph
from langgraph_tpo.graph.builder import DEFAULT_RETRY
from langgraph_tpo.prompts import PromptSet
from langgraph_tpo.reward import BatchReward

STREAM_MODES = ["updates", "custom", "values"]


def run_defaults(backends: BackendSettings | None) -> dict[str, Any]:
    """The TPO defaults under every other layer: the embedded CPU job's when the backends
    are the embedded model (N=3, D=1, max_tokens=256, ...), else (servers, your own models,
    or None: models given without settings) the paper's."""
    return dict(EMBEDDED_DEFAULTS) if backends is not None and backends.is_embedded else {}


def default_config(
    backends: BackendSettings | None,
    environ: Mapping[str, str] | None = None,
    config_model: type[TPOConfig] = TPOConfig,
) -> TPOConfig:
    """The defaults of a graph nothing else configures (``tpo serve``'s app without a
    config): :func:`run_defaults`, then the ``TPO_<NAME>`` variables."""
    chosen = settings_from_env(config_model, os.environ if environ is None else environ)
    return config_over_defaults(backends, chosen, config_model)


def config_over_defaults(
    backends: BackendSettings | None, chosen: Mapping[str, Any], config_model: type[TPOConfig]
) -> TPOConfig:
    """The settings the user ``chosen`` (checked by :func:`check_choices`) over
    :func:`run_defaults`, validated."""
    check_choices(chosen)
    return make_config({**run_defaults(backends), **chosen}, config_model)


def resolve_settings(
    given: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    config_model: type[TPOConfig] = TPOConfig,
    backend_model: type[BackendSettings] = BackendSettings,
) -> tuple[TPOConfig, BackendSettings]:
    """The run's TPO config and backend settings: :func:`run_defaults`, then the
    environment, then ``given`` (later wins), validated.

    ``given`` holds fields of either model (unset ones left out or None). A choice that
    would be ignored without a word is a :class:`ConfigError` naming both settings.
    """
    environ = os.environ if environ is None else environ
    values = {k: v for k, v in (given or {}).items() if v is not None}
    unknown = set(values) - set(config_model.model_fields) - set(backend_model.model_fields)
    if unknown:
        raise ConfigError(f"unknown settings: {', '.join(sorted(unknown))}")
    backends = backend_model.from_env(
        environ, **{k: v for k, v in values.items() if k in backend_model.model_fields}
    )
    chosen = {
        **settings_from_env(config_model, environ),
        **{k: v for k, v in values.items() if k in config_model.model_fields},
    }
    return config_over_defaults(backends, chosen, config_model), backends


def check_choices(chosen: Mapping[str, Any]) -> None:
    """Settings the user chose that the run would ignore: best-of-N runs no iteration, so
    it takes no ``max_iterations``."""
    if chosen.get("mode") == "bon" and "max_iterations" in chosen:
        raise ConfigError(
            f"max_iterations ({chosen['max_iterations']}) has no effect with mode 'bon': "
            "best-of-N samples once and runs no iterations; drop one of them (for bon at "
            "TPO's sample budget, use tpo eval --compare tpo,bon)"
        )


@dataclass(frozen=True)
class Assembly:
    """What :func:`assemble` built: the models and the graph that runs on them."""

    policy: BaseChatModel
    reward: BatchReward
    graph: CompiledStateGraph
    graph_options: Mapping[str, Any]

    def graph_for(self, config: TPOConfig | Mapping[str, Any]) -> CompiledStateGraph:
        """Another graph on the same models and options, with ``config`` as its defaults
        (``tpo eval --compare``: one graph per method)."""
        return create_tpo_graph(self.policy, self.reward, make_config(config), **self.graph_options)


def assemble(
    config: TPOConfig | Mapping[str, Any] | None = None,
    backends: BackendSettings | None = None,
    *,
    models: tuple[BaseChatModel, BatchReward] | None = None,
    prompts: PromptSet | str = "paper",
    retry: RetryPolicy | None = DEFAULT_RETRY,
    **graph_options: Any,
) -> Assembly:
    """Build (or load) the models ``backends`` name and the TPO graph on them.

    Args:
        config: The graph's defaults; None: :func:`resolve_settings` from the environment.
        backends: Where the models come from; None: the environment (else embedded).
        models: A policy and reward already built (a server that loaded them once, or a
            test's fakes): ``backends`` is then not read.
        prompts: The prompt set (a built-in name or a loaded set).
        retry: The model-calling nodes' retry policy (None: no retries).
        **graph_options: Passed on to :func:`~langgraph_tpo.create_tpo_graph`
            (``checkpointer``, ``context_schema``, ``name``, ...).

    Example:
        >>> from langgraph_tpo.assembly import assemble, resolve_settings
        >>> config, backends = resolve_settings({"num_samples": 2})  # doctest: +SKIP
        >>> graph = assemble(config, backends).graph  # doctest: +SKIP
    """
    if config is None:
        config, resolved = resolve_settings()
        backends = resolved if backends is None else backends
    policy, reward = models if models is not None else build_models(backends)
    options = {"retry": retry, "prompts": prompts, **graph_options}
    graph = create_tpo_graph(policy, reward, make_config(config), **options)
    return Assembly(policy, reward, graph, options)


@dataclass(frozen=True)
class NodeFinished:
    """A node finished; ``values`` is what it wrote to the state."""

    node: str
    values: dict[str, Any]


@dataclass(frozen=True)
class Reported:
    """An event a node reported (``stream_mode="custom"``): ``tpo_iteration`` after each
    scoring, with the best score so far and the new scores."""

    event: Any


@dataclass(frozen=True)
class RunFinished:
    """The run's final state."""

    state: dict[str, Any]


RunEvent = NodeFinished | Reported | RunFinished


async def run_events(
    graph: CompiledStateGraph,
    graph_input: Mapping[str, Any] | None,
    *,
    context: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
) -> AsyncIterator[RunEvent]:
    """Run ``graph`` on ``graph_input`` and yield its progress: one :class:`NodeFinished`
    per node, a :class:`Reported` per event a node reported, and last a :class:`RunFinished`
    with the final state (the only event a run that failed does not yield)."""
    final: dict[str, Any] = {}
    async for mode, chunk in graph.astream(
        graph_input, config, context=context, stream_mode=STREAM_MODES
    ):
        if mode == "updates":
            for node, values in chunk.items():
                yield NodeFinished(node, values if isinstance(values, dict) else {})
        elif mode == "custom":
            yield Reported(chunk)
        else:
            final = chunk
    yield RunFinished(final)
