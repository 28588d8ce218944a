"""Using a TPO graph inside other things: LCEL chains, agents' state graphs, tools.

- :func:`as_text_runnable`: ``prompt | as_text_runnable(graph) | parser``: takes a string,
  a prompt value or a message list, returns the best response string.
- :func:`tpo_node`: a node for a parent graph whose state keeps the query and the answer
  under other keys (a ``MessagesState`` parent can ``add_node("tpo", graph)`` directly).
- :func:`as_tool`: a LangChain tool an agent can call with a query.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import BaseMessage
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langchain_core.tools import BaseTool, StructuredTool
from langgraph.graph.state import CompiledStateGraph

from langgraph_tpo.errors import ConfigError


def to_graph_input(value: Any) -> dict[str, Any]:
    """A string, prompt value, message list or input dict as the graph's input."""
    if isinstance(value, str):
        return {"query": value}
    if isinstance(value, PromptValue):
        return {"messages": value.to_messages()}
    if isinstance(value, BaseMessage):
        return {"messages": [value]}
    if (
        isinstance(value, Sequence)
        and value
        and all(isinstance(m, BaseMessage | tuple | dict) for m in value)
    ):
        return {"messages": list(value)}
    if isinstance(value, Mapping) and ("query" in value or "messages" in value):
        return dict(value)
    raise ConfigError(
        f"TPO runnable input must be a string, a prompt value, a list of messages or a "
        f"dict with 'query' or 'messages'; got {type(value).__name__}"
    )


def as_text_runnable(graph: CompiledStateGraph) -> Runnable[Any, str]:
    """``graph`` as a runnable from a query (or messages) to the best response string."""

    def run(value: Any, config: RunnableConfig) -> str:
        return graph.invoke(to_graph_input(value), config)["response"]

    async def arun(value: Any, config: RunnableConfig) -> str:
        return (await graph.ainvoke(to_graph_input(value), config))["response"]

    return RunnableLambda(run, afunc=arun, name="tpo")


def read_key(state: Any, key: str) -> Any:
    """``state[key]`` of a dict-like state (or ``state.key`` of a dataclass or pydantic
    state); a :class:`ConfigError` naming the key and the keys there when it is missing."""
    if isinstance(state, Mapping):
        if key in state:
            return state[key]
        present = sorted(str(k) for k in state)
    elif hasattr(state, key):
        return getattr(state, key)
    else:
        present = sorted(k for k in vars(state) if not k.startswith("_"))
    raise ConfigError(
        f"tpo_node reads the query from state key {key!r}, which the state does not have "
        f"(keys: {', '.join(present) or 'none'}); pass query_key= to name another one"
    )


def tpo_node(
    graph: CompiledStateGraph,
    *,
    query_key: str = "query",
    response_key: str = "response",
    score_key: str | None = None,
) -> Runnable[Mapping[str, Any], dict[str, Any]]:
    """A parent-graph node: reads ``state[query_key]``, writes ``state[response_key]``.

    Sync and async (``invoke``/``ainvoke``); the parent's config (callbacks, context,
    thread and checkpointer) goes to the TPO graph, which runs as its subgraph. A state
    without ``query_key`` is a :class:`ConfigError` naming the key.
    """

    def answer(out: Mapping[str, Any]) -> dict[str, Any]:
        update = {response_key: out["response"]}
        if score_key:
            update[score_key] = out["score"]
        return update

    def run(state: Mapping[str, Any], config: RunnableConfig) -> dict[str, Any]:
        return answer(graph.invoke({"query": read_key(state, query_key)}, config))

    async def arun(state: Mapping[str, Any], config: RunnableConfig) -> dict[str, Any]:
        return answer(await graph.ainvoke({"query": read_key(state, query_key)}, config))

    return RunnableLambda(run, afunc=arun, name="tpo")


def as_tool(
    graph: CompiledStateGraph,
    *,
    name: str = "tpo_answer",
    description: str = (
        "Write the best possible answer to a query: samples several answers, scores them "
        "with a reward model and improves the best one. Returns the answer text."
    ),
) -> BaseTool:
    """``graph`` as a tool taking ``query`` and returning the best response.

    Sync and async (``invoke``/``ainvoke``, a sync or async ``ToolNode``); the caller's
    config (callbacks, context overrides, thread) goes to the TPO graph.
    """

    def tpo_answer(query: str, config: RunnableConfig) -> str:
        return graph.invoke({"query": query}, config)["response"]

    async def atpo_answer(query: str, config: RunnableConfig) -> str:
        return (await graph.ainvoke({"query": query}, config))["response"]

    return StructuredTool.from_function(
        func=tpo_answer, coroutine=atpo_answer, name=name, description=description
    )
