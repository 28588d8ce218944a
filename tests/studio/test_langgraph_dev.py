"""LangGraph Studio: ``langgraph dev`` serves langgraph.json's graph; langgraph_sdk drives it."""

from __future__ import annotations

import pytest
from langgraph_sdk import get_client

from testsupport.fake_backends import POLICY_FACTORY, REWARD_FACTORY

pytestmark = pytest.mark.slow

# Small enough for the embedded CPU default to answer in seconds.
# lenient: the embedded SmolLM2 seldom writes the update delimiters; these tests count outputs
TINY = {"num_samples": 2, "max_iterations": 1, "max_tokens": 12, "seed": 1, "extraction": "lenient"}


async def test_studio_schema_shows_tpo_and_backend_fields(studio_url: str) -> None:
    client = get_client(url=studio_url)
    (assistant,) = await client.assistants.search(graph_id="tpo")
    schemas = await client.assistants.get_schemas(assistant["assistant_id"])
    fields = schemas["context_schema"]["properties"]
    for name in (
        "num_samples",
        "max_iterations",
        "score_threshold",
        "mode",
        "policy_url",
        "reward_url",
        "review_gradient",
        "policy_factory",
        "reward_factory",
    ):
        assert name in fields
    assert "N: responses" in fields["num_samples"]["description"]
    state = schemas["input_schema"] or schemas["state_schema"]  # the factory graph: state only
    assert set(state["properties"]) >= {"query", "messages", "response", "trajectory"}


async def test_studio_run_thread_state_and_history(studio_url: str) -> None:
    client = get_client(url=studio_url)
    thread = await client.threads.create()
    out = await client.runs.wait(
        thread["thread_id"], "tpo", input={"query": "Name a color."}, context=TINY
    )
    assert out["stop_reason"] == "max_iterations", out
    assert len(out["candidates"]) == 4 and len(out["trajectory"]) == 2
    state = await client.threads.get_state(thread["thread_id"])
    assert state["values"]["response"] == out["response"]
    assert state["next"] == []
    history = await client.threads.get_history(thread["thread_id"], limit=50)
    steps = {n for h in history for n in (h.get("next") or [])}
    assert {"sample", "reward_score", "select", "textual_loss", "update"} <= steps


async def test_studio_review_gradient_interrupts_and_resumes(studio_url: str) -> None:
    client = get_client(url=studio_url)
    thread = await client.threads.create()
    await client.runs.wait(
        thread["thread_id"],
        "tpo",
        input={"query": "Say hi."},
        context={**TINY, "review_gradient": True},
    )
    state = await client.threads.get_state(thread["thread_id"])
    assert state["next"] == ["update"]
    (pause,) = state["interrupts"]
    assert "textual_gradient" in pause["value"]
    assert "'accept'" in pause["value"]["instructions"]  # Studio shows what to answer
    out = await client.runs.wait(
        thread["thread_id"],
        "tpo",
        command={"resume": "stop"},
        context={**TINY, "review_gradient": True},
    )
    assert out["stop_reason"] == "human_stop"


async def test_studio_run_on_models_named_by_factories(studio_url: str) -> None:
    client = get_client(url=studio_url)
    thread = await client.threads.create()
    context = {
        "num_samples": 2,
        "max_iterations": 2,
        "policy_factory": POLICY_FACTORY,
        "reward_factory": REWARD_FACTORY,
    }
    out = await client.runs.wait(
        thread["thread_id"], "tpo", input={"query": "Name a color."}, context=context
    )
    assert out["stop_reason"] == "max_iterations", out
    assert out["response"].startswith("answer:")  # the fake policy's texts
    assert len(out["candidates"]) == 6
    assert out["score"] == float(len(out["response"].split()))  # the fake length reward
