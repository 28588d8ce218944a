"""``create_tpo_graph``: the TPO loop as a compiled LangGraph graph.

START -> sample -> reward_score -> select -> END
                        ^             |
                        |             v
                     update <- textual_gradient <- textual_loss
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Checkpointer, Durability, RetryPolicy

from langgraph_tpo import nodes
from langgraph_tpo.config import TPOConfig, make_config
from langgraph_tpo.graph.routing import route_after_select
from langgraph_tpo.graph.state import TPOInput, TPOOutput, TPOState
from langgraph_tpo.nodes.common import NodeDeps, as_node, dual, timed
from langgraph_tpo.reward import BatchReward, ScoreFn, as_batch_reward
from langgraph_tpo.truncation import Tokenizer

try:  # where LangGraph reads a run's default durability from
    from langgraph._internal._constants import CONFIG_KEY_DURABILITY
except ImportError:  # pragma: no cover - other LangGraph versions
    CONFIG_KEY_DURABILITY = "__pregel_durability"

NODE_NAMES = ("sample", "reward_score", "select", "textual_loss", "textual_gradient", "update")


def retry_transient(exc: BaseException) -> bool:
    return bool(getattr(exc, "transient", False))


# Model calls that fail transiently (server down or restarting, timeout, HTTP 429/5xx) are
# retried with exponential backoff: 1 s, 2 s, 4 s, ... capped at 30 s, 6 attempts in all.
DEFAULT_RETRY = RetryPolicy(
    initial_interval=1.0,
    backoff_factor=2.0,
    max_interval=30.0,
    max_attempts=6,
    jitter=True,
    retry_on=retry_transient,
)


def create_tpo_graph(
    policy: BaseChatModel,
    reward: BatchReward | Runnable | ScoreFn,
    config: TPOConfig | Mapping[str, Any] | None = None,
    *,
    checkpointer: Checkpointer = None,
    tokenizer: Tokenizer | None = None,
    name: str = "tpo",
    context_schema: type[TPOConfig] = TPOConfig,
    retry: RetryPolicy | None = DEFAULT_RETRY,
    durability: Durability = "sync",
) -> CompiledStateGraph:
    """Build the TPO graph for ``policy`` (any LangChain chat model) and ``reward``.

    ``reward`` is ``fn(query, response) -> float`` (sync or async), a LangChain runnable,
    or an object with ``async ascore_batch(pairs)``. ``config`` sets the defaults of every
    run; pass ``context={...}`` to ``invoke`` to override fields for one run. ``tokenizer``
    (optional) counts tokens for the ``max_context_tokens`` cut; without it a word-level
    estimate is used. ``context_schema`` may be a subclass of TPOConfig carrying more
    per-run fields (the Studio graph adds backend settings). ``retry`` is the retry
    budget of the model-calling nodes for transient failures (``None``: no retries).
    ``durability`` is the default checkpoint durability of runs (LangGraph's default is
    "async"): "sync" writes each node's checkpoint before the next node starts, so a killed
    process resumes from the last finished node; a checkpoint costs milliseconds, a model
    call seconds. Any run can still pass ``durability=...``.
    """
    if not isinstance(policy, BaseChatModel):
        raise TypeError(f"policy must be a LangChain BaseChatModel, got {type(policy).__name__}")
    deps = NodeDeps(policy, as_batch_reward(reward), make_config(config), tokenizer)
    builder = StateGraph(
        TPOState, context_schema=context_schema, input_schema=TPOInput, output_schema=TPOOutput
    )
    builder.add_node(
        "sample",
        as_node("sample", timed("sample", nodes.make_sample_node(deps), fresh_step=True)),
        retry_policy=retry,
    )
    for node_name, factory in (
        ("reward_score", nodes.make_reward_score_node),
        ("textual_loss", nodes.make_textual_loss_node),
        ("textual_gradient", nodes.make_textual_gradient_node),
        ("update", nodes.make_update_node),
    ):
        builder.add_node(
            node_name, as_node(node_name, timed(node_name, factory(deps))), retry_policy=retry
        )
    builder.add_node("select", as_node("select", nodes.make_select_node(deps)))

    builder.add_edge(START, "sample")
    builder.add_edge("sample", "reward_score")
    builder.add_edge("reward_score", "select")
    builder.add_conditional_edges(
        "select",
        dual("route_after_select", route_after_select, trace=False),
        ["textual_loss", END],
    )
    builder.add_edge("textual_loss", "textual_gradient")
    builder.add_edge("textual_gradient", "update")
    builder.add_edge("update", "reward_score")
    graph = builder.compile(checkpointer=checkpointer, name=name)
    if checkpointer is None:
        return graph
    return graph.with_config({"configurable": {CONFIG_KEY_DURABILITY: durability}})
