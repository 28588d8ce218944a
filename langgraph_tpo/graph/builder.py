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
from langgraph.cache.base import BaseCache
from langgraph.graph import START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.store.base import BaseStore
from langgraph.types import All, Checkpointer, Durability, RetryPolicy

from langgraph_tpo import nodes
from langgraph_tpo.config import TPOConfig, make_config
from langgraph_tpo.graph.routing import AFTER_SELECT, route_after_select
from langgraph_tpo.graph.state import CritiqueView, ScoringView, TPOInput, TPOOutput, TPOState
from langgraph_tpo.nodes.common import AsyncNode, NodeDeps, NodeFn, Update, timed
from langgraph_tpo.prompts import PromptSet, builtin_prompt_set, resolve_prompt_set
from langgraph_tpo.reward import BatchReward, ScoreFn, as_batch_reward, check_row, row_fields_of
from langgraph_tpo.truncation import Tokenizer

NODE_NAMES = ("sample", "reward_score", "select", "textual_loss", "textual_gradient", "update")


def checking_row(fields: tuple[str, ...], node: NodeFn) -> NodeFn:
    """``node``, first checking that the input's ``row`` has ``fields`` (read by the reward):
    a missing field fails the run before any model call, not at the first scoring."""
    if not fields:
        return node

    async def checked(state: TPOState) -> Update:
        check_row(fields, state.get("row"))
        return await node(state)

    return checked


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


class TPOGraph(CompiledStateGraph):
    """A compiled TPO graph whose runs default to ``durability=default_durability`` when it
    has a checkpointer (LangGraph's own default is "async").

    Only ``stream``/``astream`` are overridden: ``invoke``, ``batch`` and ``astream_events``
    go through them. A run that passes ``durability`` (or the deprecated
    ``checkpoint_during``) keeps its own choice.
    """

    def __init__(self, *, default_durability: Durability | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.default_durability = default_durability  # kept by copy()/with_config()

    def _durability(self, durability: Durability | None, kwargs: dict[str, Any]) -> Any:
        if durability is not None or kwargs.get("checkpoint_during") is not None:
            return durability
        if self.checkpointer is None or self.checkpointer is False:
            return None  # LangGraph warns about a durability without a checkpointer
        return self.default_durability

    def stream(self, input: Any, config: Any = None, *, durability: Any = None, **kwargs: Any):
        durability = self._durability(durability, kwargs)
        return super().stream(input, config, durability=durability, **kwargs)

    def astream(self, input: Any, config: Any = None, *, durability: Any = None, **kwargs: Any):
        durability = self._durability(durability, kwargs)
        return super().astream(input, config, durability=durability, **kwargs)


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
    store: BaseStore | None = None,
    cache: BaseCache | None = None,
    interrupt_before: All | list[str] | None = None,
    interrupt_after: All | list[str] | None = None,
    debug: bool = False,
    prompts: str | PromptSet = "paper",
) -> CompiledStateGraph:
    """Build the TPO loop for ``policy`` and ``reward`` as a compiled LangGraph graph.

    Each run samples ``num_samples`` responses, scores them, then for up to
    ``max_iterations`` rounds has the policy critique the best against the worst (textual
    loss), turn the critique into suggestions (textual gradient) and write new responses
    (update), which are scored and added to the cache. Input: ``{"query": str}`` or
    ``{"messages": [...]}`` (either with an optional ``row``: the data row's fields, for a
    reward that reads them); output: ``response``, ``score``, ``trajectory``, ``stop_reason``
    and more (see the output table of docs/python-api.md).

    Args:
        policy: Any LangChain chat model (``BaseChatModel``); it writes the responses,
            critiques, suggestions and rewrites. A model that accepts ``n`` (ChatOpenAI,
            the vLLM backends) draws all samples of a step in one request.
        reward: Scores ``(conversation, response)`` pairs, higher is better: a function
            ``fn(query, response) -> float`` (sync or async), a LangChain runnable taking
            ``{"query", "response"}``, or an object with ``async ascore_batch(pairs)``
            (a ``BatchReward``). A reward with ``row_fields`` also reads those fields of
            the input's ``row`` (a reference answer: see ``MathVerifierReward``).
        config: The defaults of every run (a ``TPOConfig`` or a mapping of its fields).
            A run overrides fields with ``invoke(..., context={...})``.
        checkpointer: A LangGraph checkpointer (``InMemorySaver``, ``SqliteSaver``, ...)
            for persistence, resuming and human review. Pass a ``thread_id`` then.
        tokenizer: Counts tokens for the ``max_context_tokens`` cut (an object with
            ``encode``/``decode``, e.g. a transformers tokenizer); default a word-level
            estimate.
        name: The graph's name (in traces, and its node name inside a parent graph).
        context_schema: A subclass of ``TPOConfig`` carrying more per-run fields (the
            Studio graph adds backend settings).
        retry: The retry policy of the model-calling nodes for transient failures (server
            down, timeout, HTTP 429/5xx); ``None``: no retries.
        durability: The checkpoint durability of runs that do not pass their own
            (LangGraph's default is "async"). "sync" writes each node's checkpoint before
            the next node starts, so a killed process resumes from the last finished node;
            a checkpoint costs milliseconds, a model call seconds.
        store: A LangGraph store (long-term memory) the graph's runs can use.
        cache: A LangGraph node cache.
        interrupt_before: Node names (or ``"*"``) to pause before; needs a checkpointer.
        interrupt_after: Node names (or ``"*"``) to pause after; needs a checkpointer.
        debug: Print LangGraph's debug output of every step.
        prompts: The prompt set: "paper" (the paper's information flow), "compact", or a
            ``PromptSet`` of your own; a run's context can name a built-in set instead
            (``prompt_set``).

    Returns:
        A compiled graph (a ``CompiledStateGraph``): ``invoke``/``ainvoke``,
        ``stream``/``astream``, ``batch``, usable as a node of a parent graph.

    Example:
        ```python
        from langchain_openai import ChatOpenAI
        from langgraph_tpo import create_tpo_graph

        def reward(query: str, response: str) -> float:
            return -abs(len(response) - 200)  # prefers answers of about 200 characters

        graph = create_tpo_graph(
            ChatOpenAI(model="gpt-4o-mini"),
            reward,
            {"num_samples": 5, "max_iterations": 2},
        )
        out = graph.invoke({"query": "How do I take care of a wooden table?"})
        print(out["response"], out["score"])
        ```
    """
    if not isinstance(policy, BaseChatModel):
        raise TypeError(f"policy must be a LangChain BaseChatModel, got {type(policy).__name__}")
    defaults = make_config(config)
    prompt_set = resolve_prompt_set(prompts)
    if defaults.prompt_set not in (None, prompt_set.name):
        builtin_prompt_set(defaults.prompt_set)  # an unknown name fails here, not mid-run
    deps = NodeDeps(policy, as_batch_reward(reward), defaults, tokenizer, prompt_set)
    builder = StateGraph(
        TPOState, context_schema=context_schema, input_schema=TPOInput, output_schema=TPOOutput
    )
    builder.add_node(
        "sample",
        AsyncNode(
            "sample",
            timed(
                "sample",
                checking_row(row_fields_of(deps.reward), nodes.make_sample_node(deps)),
                starts_run=True,
            ),
        ),
        retry_policy=retry,
    )
    for node_name, factory, view in (
        ("reward_score", nodes.make_reward_score_node, ScoringView),
        ("textual_loss", nodes.make_textual_loss_node, CritiqueView),
        ("textual_gradient", nodes.make_textual_gradient_node, CritiqueView),
        ("update", nodes.make_update_node, CritiqueView),
    ):
        builder.add_node(
            node_name,
            AsyncNode(node_name, timed(node_name, factory(deps))),
            retry_policy=retry,
            input_schema=view,
        )
    builder.add_node(
        "select",
        AsyncNode("select", route_after_select(nodes.make_select_node(deps))),
        destinations=AFTER_SELECT,
    )

    builder.add_edge(START, "sample")
    builder.add_edge("sample", "reward_score")
    builder.add_edge("reward_score", "select")
    builder.add_edge("textual_loss", "textual_gradient")
    builder.add_edge("textual_gradient", "update")
    builder.add_edge("update", "reward_score")
    graph = builder.compile(
        checkpointer=checkpointer,
        store=store,
        cache=cache,
        interrupt_before=interrupt_before,
        interrupt_after=interrupt_after,
        debug=debug,
        name=name,
    )
    # compile() builds a plain CompiledStateGraph (with state it sets after construction);
    # TPOGraph adds no storage, only the run defaults, so the graph can take its class.
    graph.__class__ = TPOGraph
    graph.default_durability = durability
    return graph
