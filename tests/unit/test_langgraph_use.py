"""At home in LangGraph: messages, parent graphs, LCEL, streaming, persistence, review."""

from __future__ import annotations

import sqlite3
from typing import TypedDict

import pytest
from langchain_core.messages import AIMessage, ChatMessage, HumanMessage, SystemMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.types import Command

from langgraph_tpo import (
    ConfigError,
    PolicyError,
    TPOConfig,
    as_text_runnable,
    as_tool,
    create_tpo_graph,
    tpo_node,
)
from langgraph_tpo.fakes import FakeBatchReward, FakeNPolicy

SMALL = TPOConfig(num_samples=2, max_iterations=1)


def length_reward(query: str, response: str) -> float:
    return float(len(response))


def conversation() -> list:
    return [
        SystemMessage("Be brief."),
        HumanMessage("I have an oak table."),
        AIMessage("Nice! How can I help?"),
        HumanMessage("How do I clean it?"),
    ]


def test_messages_input_scores_the_whole_conversation_and_appends_one_reply() -> None:
    reward = FakeBatchReward()
    seen: list = []

    class Recording(FakeBatchReward):
        async def ascore_batch(self, pairs):
            seen.extend(pairs)
            return await reward.ascore_batch(pairs)

    policy = FakeNPolicy()
    out = create_tpo_graph(policy, Recording(), SMALL).invoke({"messages": conversation()})
    conv, _ = seen[0]
    assert [m["role"] for m in conv] == ["system", "user", "assistant", "user"]
    assert conv[1]["content"] == "I have an oak table."
    assert len(out["messages"]) == 5
    reply = out["messages"][-1]
    assert isinstance(reply, AIMessage) and reply.content == out["response"]
    assert reply.response_metadata["tpo"] == {
        "score": out["score"],
        "iterations": 1,
        "stop_reason": "max_iterations",
    }
    sample_prompt = policy.calls[0]["messages"]
    assert [m.type for m in sample_prompt] == ["system", "human", "ai", "human"]
    loss_prompt = next(c for c in policy.calls if c["kind"] == "loss")["messages"][-1].content
    assert "User: I have an oak table." in loss_prompt and "Assistant: Nice!" in loss_prompt


def test_a_chat_message_is_a_turn_of_its_own_role() -> None:
    policy = FakeNPolicy()
    messages = [SystemMessage("Be brief."), ChatMessage(role="user", content="Hi?")]
    create_tpo_graph(policy, length_reward, SMALL).invoke({"messages": messages})
    sample_prompt = policy.calls[0]["messages"]
    assert [(m.type, m.content) for m in sample_prompt] == [
        ("system", "Be brief."),
        ("human", "Hi?"),
    ]


@pytest.mark.parametrize(
    "messages,problem",
    [
        ([AIMessage("hi")], "no user message"),
        ([HumanMessage("q"), AIMessage("a")], "last message"),
        ([HumanMessage("q"), 3], "message type"),
    ],
)
def test_bad_messages_are_rejected_before_any_model_call(messages, problem) -> None:
    policy = FakeNPolicy()
    with pytest.raises((ConfigError, NotImplementedError), match=problem):
        create_tpo_graph(policy, length_reward).invoke({"messages": messages})
    assert policy.calls == []


def test_query_and_messages_together_are_rejected_naming_both() -> None:
    policy = FakeNPolicy()
    graph = create_tpo_graph(policy, length_reward, SMALL)
    with pytest.raises(ConfigError, match=r"both 'query' and 'messages'.*'A'"):
        graph.invoke({"query": "A", "messages": [HumanMessage("B")]})
    assert policy.calls == []


def test_a_thread_answered_from_messages_takes_the_next_turn_as_messages() -> None:
    graph = create_tpo_graph(FakeNPolicy(), length_reward, SMALL, checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "turns"}}
    graph.invoke({"messages": [HumanMessage("first question")]}, config)
    out = graph.invoke({"messages": [HumanMessage("second question")]}, config)
    assert out["query"] == "second question"
    with pytest.raises(ConfigError, match="both 'query' and 'messages'"):
        graph.invoke({"query": "a third, alone"}, config)


def test_a_parents_other_keys_are_allowed_beside_messages() -> None:
    class ChatWithTopic(MessagesState):
        topic: str

    parent = StateGraph(ChatWithTopic)
    parent.add_node("tpo", create_tpo_graph(FakeNPolicy(), length_reward, SMALL))
    parent.add_edge(START, "tpo")
    out = parent.compile().invoke({"messages": [HumanMessage("q")], "topic": "tables"})
    assert out["messages"][-1].type == "ai" and out["topic"] == "tables"


def test_messages_state_parent_adds_the_graph_directly_with_a_checkpointer() -> None:
    tpo = create_tpo_graph(FakeNPolicy(), length_reward, SMALL)
    parent = StateGraph(MessagesState)
    parent.add_node("tpo", tpo)
    parent.add_edge(START, "tpo")
    parent.add_edge("tpo", END)
    app = parent.compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "chat"}}
    app.invoke({"messages": [HumanMessage("first question")]}, config)
    app.invoke({"messages": [HumanMessage("second question")]}, config)
    messages = app.get_state(config).values["messages"]
    assert [m.type for m in messages] == ["human", "ai", "human", "ai"]
    assert messages[-1].response_metadata["tpo"]["stop_reason"] == "max_iterations"
    assert messages[1].content.startswith("improved answer")


def test_tpo_node_for_a_parent_with_other_keys() -> None:
    class AgentState(TypedDict, total=False):
        question: str
        answer: str
        answer_score: float

    tpo = create_tpo_graph(FakeNPolicy(), length_reward, SMALL)
    parent = StateGraph(AgentState)
    parent.add_node(
        "answer",
        tpo_node(tpo, query_key="question", response_key="answer", score_key="answer_score"),
    )
    parent.add_edge(START, "answer")
    parent.add_edge("answer", END)
    app = parent.compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "agent"}}
    app.invoke({"question": "What is TPO?"}, config)
    state = app.get_state(config).values
    assert state["answer"].startswith("improved answer") and state["answer_score"] > 0


async def test_as_tool_answers_a_query() -> None:
    tool = as_tool(create_tpo_graph(FakeNPolicy(), length_reward, SMALL))
    assert tool.name == "tpo_answer" and "query" in tool.args
    assert (await tool.ainvoke({"query": "q"})).startswith("improved answer")


@pytest.fixture
def chain():
    prompt = ChatPromptTemplate.from_messages([("system", "Be helpful."), ("human", "{q}")])
    runnable = as_text_runnable(create_tpo_graph(FakeNPolicy(), length_reward, SMALL))
    return prompt | runnable | StrOutputParser()


def test_lcel_invoke_batch_stream(chain) -> None:
    assert chain.invoke({"q": "hello"}).startswith("improved answer")
    assert len(chain.batch([{"q": "a"}, {"q": "b"}])) == 2
    chunks = list(chain.stream({"q": "hello"}))
    assert "".join(chunks).startswith("improved answer")


async def test_lcel_async_paths(chain) -> None:
    assert (await chain.ainvoke({"q": "hello"})).startswith("improved answer")
    assert len(await chain.abatch([{"q": "a"}, {"q": "b"}])) == 2
    chunks = [c async for c in chain.astream({"q": "hello"})]
    assert "".join(chunks).startswith("improved answer")


def test_text_runnable_takes_strings_and_rejects_other_input() -> None:
    runnable = as_text_runnable(create_tpo_graph(FakeNPolicy(), length_reward, SMALL))
    assert runnable.invoke("plain string").startswith("improved answer")
    with pytest.raises(ConfigError, match="int"):
        runnable.invoke(42)


def test_custom_stream_emits_one_event_per_iteration() -> None:
    graph = create_tpo_graph(
        FakeNPolicy(), length_reward, TPOConfig(num_samples=2, max_iterations=2)
    )
    events = [e for e in graph.stream({"query": "q"}, stream_mode="custom")]
    assert [e["iteration"] for e in events] == [0, 1, 2]
    assert all(e["event"] == "tpo_iteration" for e in events)
    assert events[-1]["stop_reason"] == "max_iterations"
    assert events[0]["best_score"] <= events[-1]["best_score"]


class FailingOnce(FakeNPolicy):
    fail_kind: str = "update"
    failed: bool = False

    def _draw(self, kind, messages, n, kwargs):
        if kind == self.fail_kind and not self.failed:
            self.failed = True
            raise RuntimeError("policy server went away")
        return super()._draw(kind, messages, n, kwargs)


@pytest.mark.parametrize("saver", ["memory", "sqlite"])
def test_resume_after_a_failure_repeats_no_finished_work(saver, tmp_path) -> None:
    checkpointer = (
        InMemorySaver()
        if saver == "memory"
        else SqliteSaver(sqlite3.connect(tmp_path / "cp.db", check_same_thread=False))
    )
    policy = FailingOnce()
    reward = FakeBatchReward()
    graph = create_tpo_graph(
        policy, reward, TPOConfig(num_samples=3, max_iterations=2), checkpointer=checkpointer
    )
    config = {"configurable": {"thread_id": "resume"}}
    with pytest.raises(PolicyError, match="went away"):
        graph.invoke({"query": "q"}, config)
    assert graph.get_state(config).next == ("update",)
    assert len(reward.batches) == 1
    out = graph.invoke(None, config)
    assert out["stop_reason"] == "max_iterations" and len(out["candidates"]) == 9
    assert policy.count("sample") == 3  # never sampled again
    assert policy.count("loss") == 2 and policy.count("gradient") == 2
    assert len(reward.batches) == 3  # initial batch scored once


def review_graph():
    policy = FakeNPolicy()
    graph = create_tpo_graph(
        policy,
        length_reward,
        TPOConfig(num_samples=2, max_iterations=2, review_gradient=True),
        checkpointer=InMemorySaver(),
    )
    return policy, graph, {"configurable": {"thread_id": "review"}}


def test_review_pauses_after_the_gradient_showing_what_to_review() -> None:
    policy, graph, config = review_graph()
    out = graph.invoke({"query": "q"}, config)
    (pause,) = out["__interrupt__"]
    assert set(pause.value) >= {"chosen", "rejected", "textual_loss", "textual_gradient"}
    assert pause.value["textual_gradient"] == "gradient text 0"
    assert graph.get_state(config).next == ("update",)
    assert policy.count("update") == 0


def test_review_accept_then_edit() -> None:
    policy, graph, config = review_graph()
    graph.invoke({"query": "q"}, config)
    graph.invoke(Command(resume="accept"), config)
    out = graph.invoke(Command(resume="Use bullet points."), config)
    assert out["stop_reason"] == "max_iterations"
    t1, t2 = out["trajectory"][1:]
    assert (t1["review"], t2["review"]) == ("accept", "edit")
    assert t2["textual_gradient"] == "Use bullet points."
    last_update = [c for c in policy.calls if c["kind"] == "update"][-1]
    assert any(m.content == "Use bullet points." for m in last_update["messages"])
    assert policy.count("update") == 4 and policy.count("gradient") == 2


def test_review_stop_ends_the_loop_cleanly() -> None:
    policy, graph, config = review_graph()
    graph.invoke({"query": "q"}, config)
    out = graph.invoke(Command(resume={"action": "stop"}), config)
    assert out["stop_reason"] == "human_stop"
    assert policy.count("update") == 0 and len(out["candidates"]) == 2
    assert out["trajectory"][-1]["stop_reason"] == "human_stop"


def test_killed_process_resumes_from_the_sqlite_checkpoint(tmp_path) -> None:
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).with_name("kill_resume_script.py")
    db = str(tmp_path / "cp.db")
    first = subprocess.run(
        [sys.executable, str(script), db, "start-and-die"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert first.returncode == 9, first.stderr
    second = subprocess.run(
        [sys.executable, str(script), db, "resume"], capture_output=True, text=True, timeout=120
    )
    assert second.returncode == 0, second.stderr
    result = json.loads(second.stdout)
    assert result["stop_reason"] == "max_iterations" and result["candidates"] == 9
    # the new process drew no initial samples and re-did no finished loss/gradient
    assert "sample" not in result["calls"]
    assert result["calls"] == {"update": 6, "loss": 1, "gradient": 1}
    assert result["reward_batches"] == 2
