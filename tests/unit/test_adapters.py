"""The adapters (tool, node, text runnable) in sync and async code, with the caller's config.

Each adapter runs under ``invoke`` and ``ainvoke``, inside a parent graph (a sync and an
async ``ToolNode`` for the tool), and passes the caller's config through: its callbacks
see the TPO graph's nodes, its thread id is in their metadata, and the parent run's
context overrides the TPO graph's defaults.
"""

from __future__ import annotations

import uuid
from typing import Any, TypedDict

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode

from langgraph_tpo import ConfigError, TPOConfig, as_text_runnable, as_tool, create_tpo_graph
from langgraph_tpo.fakes import FakeNPolicy

QUERY = "How do I take care of a wooden table?"
DEFAULTS = TPOConfig(num_samples=3, max_iterations=1)


class Recorder(BaseCallbackHandler):
    """Records the name and metadata of every chain run it sees."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, dict[str, Any]]] = []

    def on_chain_start(self, serialized: Any, inputs: Any, **kwargs: Any) -> None:
        self.runs.append((kwargs.get("name") or "", kwargs.get("metadata") or {}))

    def names(self) -> set[str]:
        return {name for name, _ in self.runs}

    def thread_ids(self, name: str) -> set[Any]:
        return {meta.get("thread_id") for run, meta in self.runs if run == name}


def tpo(policy: FakeNPolicy) -> Any:
    return create_tpo_graph(policy, lambda q, r: float(len(r)), DEFAULTS)


def tool_call_message(query: str = QUERY) -> AIMessage:
    call = {"name": "tpo_answer", "args": {"query": query}, "id": "call-1", "type": "tool_call"}
    return AIMessage("", tool_calls=[call])


def agent_with_tool_node(tool: Any) -> Any:
    parent = StateGraph(MessagesState, context_schema=TPOConfig)
    parent.add_node("tools", ToolNode([tool]))
    parent.add_edge(START, "tools")
    parent.add_edge("tools", END)
    return parent.compile(checkpointer=InMemorySaver())


def thread_config(recorder: Recorder) -> dict[str, Any]:
    return {"configurable": {"thread_id": f"t-{uuid.uuid4()}"}, "callbacks": [recorder]}


def assert_config_reached_the_graph(recorder: Recorder, config: dict[str, Any]) -> None:
    assert {"sample", "reward_score", "select"} <= recorder.names()
    thread = config["configurable"].get("thread_id")
    if thread is not None:
        assert recorder.thread_ids("sample") == {thread}


@pytest.mark.parametrize("use_async", [False, True], ids=["invoke", "ainvoke"])
async def test_tool_invoked_directly_passes_the_callers_config(use_async: bool) -> None:
    policy, recorder = FakeNPolicy(), Recorder()
    tool = as_tool(tpo(policy))
    config = {"callbacks": [recorder], "configurable": {}}
    args = {"query": QUERY}
    answer = await tool.ainvoke(args, config) if use_async else tool.invoke(args, config)
    assert answer.startswith("improved answer")
    assert_config_reached_the_graph(recorder, config)


@pytest.mark.parametrize("use_async", [False, True], ids=["sync-ToolNode", "async-ToolNode"])
async def test_tool_in_a_tool_node_gets_callbacks_thread_and_context(use_async: bool) -> None:
    policy, recorder = FakeNPolicy(), Recorder()
    agent = agent_with_tool_node(as_tool(tpo(policy)))
    config, state = thread_config(recorder), {"messages": [tool_call_message()]}
    context = {"num_samples": 2}
    if use_async:
        out = await agent.ainvoke(state, config, context=context)
    else:
        out = agent.invoke(state, config, context=context)
    reply = out["messages"][-1]
    assert isinstance(reply, ToolMessage) and reply.status != "error", reply
    assert reply.content.startswith("improved answer")
    assert_config_reached_the_graph(recorder, config)
    assert {call["n"] for call in policy.calls if call["kind"] == "sample"} == {2}  # context


class Question(TypedDict, total=False):
    question: str
    answer: str


def parent_with(node: Any) -> Any:
    parent = StateGraph(Question, context_schema=TPOConfig)
    parent.add_node("tpo", node)
    parent.add_edge(START, "tpo")
    parent.add_edge("tpo", END)
    return parent.compile(checkpointer=InMemorySaver())


@pytest.mark.parametrize("use_async", [False, True], ids=["invoke", "ainvoke"])
async def test_tpo_node_passes_callbacks_thread_and_context(use_async: bool) -> None:
    from langgraph_tpo import tpo_node

    policy, recorder = FakeNPolicy(), Recorder()
    app = parent_with(tpo_node(tpo(policy), query_key="question", response_key="answer"))
    config, state = thread_config(recorder), {"question": QUERY}
    context = {"num_samples": 2}
    if use_async:
        out = await app.ainvoke(state, config, context=context)
    else:
        out = app.invoke(state, config, context=context)
    assert out["answer"].startswith("improved answer")
    assert_config_reached_the_graph(recorder, config)
    assert {call["n"] for call in policy.calls if call["kind"] == "sample"} == {2}


@pytest.mark.parametrize("use_async", [False, True], ids=["invoke", "ainvoke"])
async def test_text_runnable_passes_the_callers_config(use_async: bool) -> None:
    recorder = Recorder()
    runnable = as_text_runnable(tpo(FakeNPolicy()))
    config = {"callbacks": [recorder], "configurable": {}}
    answer = await runnable.ainvoke(QUERY, config) if use_async else runnable.invoke(QUERY, config)
    assert answer.startswith("improved answer")
    assert_config_reached_the_graph(recorder, config)


@pytest.mark.parametrize("use_async", [False, True], ids=["invoke", "ainvoke"])
async def test_tpo_node_with_a_missing_key_is_a_config_error_naming_it(use_async: bool) -> None:
    from langgraph_tpo import tpo_node

    policy = FakeNPolicy()
    node = tpo_node(tpo(policy), query_key="question")
    state = {"prompt": QUERY}
    with pytest.raises(ConfigError, match=r"state key 'question'.*\(keys: prompt\)"):
        await node.ainvoke(state) if use_async else node.invoke(state)
    assert policy.calls == []


def test_tool_with_a_missing_argument_names_it() -> None:
    tool = as_tool(tpo(FakeNPolicy()))
    with pytest.raises(ValueError, match="query"):
        tool.invoke({"question": QUERY})
