"""Servers that are down, killed mid-run and restarted: real processes, real sockets.

* down at start: one clear CLI error naming the URL and what was tried, in bounded time;
* killed mid-run: retried with backoff within the budget; when the budget runs out the
  error is transient, the SQLite checkpoint holds every finished node, and after a restart
  the run resumes without generating or scoring finished candidates again;
* ``tpo eval`` against a policy server that dies: finished prompts stay in the results and
  a rerun after the restart runs only the rest.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from langgraph_tpo import PolicyError, RewardError, create_tpo_graph
from langgraph_tpo.backends.servers.vllm_server import vllm_chat_model
from langgraph_tpo.errors import TPOError
from testsupport.servers import free_port

from .conftest import (
    PATIENT,
    POLICY_MODEL,
    QUERY,
    QUICK,
    SMALL,
    Backends,
    one_error_line,
    questions,
    read_jsonl,
    run_tpo,
    write_prompts,
)
from .stub import StubServer

DIE_ON_UPDATE = {"faults": [{"path": "chat", "kind": "update", "action": "die"}]}
DIE_ON_SECOND_SCORING = {"faults": [{"path": "classify", "skip": 1, "action": "die"}]}


def thread(name: str) -> RunnableConfig:
    return {"configurable": {"thread_id": name}}


@pytest.mark.parametrize("command,down", [("run", "policy"), ("eval", "reward")])
def test_cli_server_down_at_start_is_one_clear_line_in_bounded_time(
    backends: Backends, tmp_path: Path, command: str, down: str
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    args = backends.cli_args()
    args[args.index(f"--{down}-url") + 1] = dead + ("/v1" if down == "policy" else "")
    target = (
        ["run", QUERY]
        if command == "run"
        else ["eval", str(write_prompts(tmp_path / "d.jsonl", questions(3))),
              "-o", str(tmp_path / "r.jsonl")]
    )  # fmt: skip
    started = time.monotonic()
    result = run_tpo([*target, *args, "-n", "2", "-d", "1", "--retries", "2"])
    elapsed = time.monotonic() - started

    assert result.returncode == 1
    line = one_error_line(result.stderr)
    assert f"{down} server at {dead}" in line and "unreachable" in line, line
    assert "tried GET 3 times" in line and "Connection refused" in line, line
    assert elapsed < 60  # backoff 1 s + 2 s, plus interpreter start-up on a loaded machine
    assert backends.policy.count() == backends.reward.count() == 0  # no model work at all


async def test_reward_down_at_start_names_the_url(backends: Backends) -> None:
    backends.reward.kill()
    graph = create_tpo_graph(backends.chat_model(), backends.reward_model(), SMALL, retry=QUICK)
    with pytest.raises(
        TPOError, match=f"reward server at {backends.reward.base_url}/classify"
    ) as info:
        await graph.ainvoke({"query": QUERY})
    assert info.value.transient and "unreachable" in str(info.value)


async def test_policy_down_error_names_the_url(backends: Backends) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    policy = vllm_chat_model(dead, POLICY_MODEL, timeout=5.0)
    graph = create_tpo_graph(policy, backends.reward_model(), SMALL, retry=QUICK)
    with pytest.raises(PolicyError) as info:
        await graph.ainvoke({"query": QUERY})
    assert info.value.transient and dead in str(info.value)


@pytest.mark.parametrize(
    "victim,fault,next_node,error",
    [
        ("policy", DIE_ON_UPDATE, "update", PolicyError),
        ("reward", DIE_ON_SECOND_SCORING, "reward_score", RewardError),
    ],
)
async def test_killed_mid_run_budget_exhausted_then_resumed_from_sqlite(
    backends: Backends,
    tmp_path: Path,
    victim: str,
    fault: dict[str, Any],
    next_node: str,
    error: type[TPOError],
) -> None:
    server: StubServer = getattr(backends, victim)
    server.configure(fault)
    db = str(tmp_path / "checkpoints.sqlite")
    async with AsyncSqliteSaver.from_conn_string(db) as saver:
        graph = create_tpo_graph(
            backends.chat_model(), backends.reward_model(), SMALL, checkpointer=saver, retry=QUICK
        )
        with pytest.raises(error) as info:
            await graph.ainvoke({"query": QUERY}, thread("t"))
    assert info.value.transient  # worth retrying later: the server was down
    server.wait_dead()

    # A new process would see this: the checkpoint file holds every finished node.
    async with AsyncSqliteSaver.from_conn_string(db) as saver:
        graph = create_tpo_graph(
            backends.chat_model(), backends.reward_model(), SMALL, checkpointer=saver, retry=QUICK
        )
        saved = await graph.aget_state(thread("t"))
        assert saved.next == (next_node,)
        first = saved.values["candidates"]
        assert len(first) == SMALL.num_samples and all(c["iteration"] == 0 for c in first)
        before = _counts(backends)

        server.start({})
        out = await graph.ainvoke(None, thread("t"))

    assert out["stop_reason"] == "max_iterations"
    assert out["candidates"][: len(first)] == first  # finished candidates kept as they were
    after = _counts(backends)
    assert after["sample"] == before["sample"] == 1  # never sampled again
    assert after["classify"] - before["classify"] == 1  # only the new candidates scored
    if victim == "policy":  # loss and gradient were finished: only update runs again
        assert (after["loss"], after["gradient"]) == (before["loss"], before["gradient"]) == (1, 1)
        assert after["update"] - before["update"] == 1
    else:  # the update texts were saved: scoring them needs no new generation
        assert after["update"] == before["update"] == 1


def _counts(backends: Backends) -> dict[str, int]:
    counts = {kind: backends.policy.count("chat", kind) for kind in ("sample", "loss", "gradient")}
    counts["update"] = backends.policy.count("chat", "update")
    counts["classify"] = backends.reward.count("classify")
    return counts


def test_sync_invoke_with_sqlite_saver_resumes_after_restart(
    backends: Backends, tmp_path: Path
) -> None:
    backends.policy.configure(DIE_ON_UPDATE)
    connection = sqlite3.connect(str(tmp_path / "sync.sqlite"), check_same_thread=False)
    graph = create_tpo_graph(
        backends.chat_model(),
        backends.reward_model(),
        SMALL,
        checkpointer=SqliteSaver(connection),
        retry=QUICK,
    )
    with pytest.raises(PolicyError) as info:
        graph.invoke({"query": QUERY}, thread("sync"))
    assert info.value.transient and graph.get_state(thread("sync")).next == ("update",)
    backends.policy.configure({})
    out = graph.invoke(None, thread("sync"))
    assert out["stop_reason"] == "max_iterations"
    assert backends.policy.count("chat", "sample") == 1


@pytest.mark.parametrize("victim", ["policy", "reward"])
async def test_server_restarted_within_the_budget_is_recovered(
    backends: Backends, victim: str
) -> None:
    server: StubServer = getattr(backends, victim)
    server.configure(DIE_ON_UPDATE if victim == "policy" else DIE_ON_SECOND_SCORING)
    starts = server.starts
    restarter = server.restart_after_death(delay=0.5, config={})
    graph = create_tpo_graph(backends.chat_model(), backends.reward_model(), SMALL, retry=PATIENT)
    started = time.monotonic()
    out = await graph.ainvoke({"query": QUERY})
    restarter.join(timeout=30)

    assert out["stop_reason"] == "max_iterations" and len(out["candidates"]) == 4
    assert time.monotonic() - started < 15  # within PATIENT's budget (about 9 s of waits)
    assert server.starts == starts + 1  # it died once and came back once
    assert backends.policy.count("chat", "sample") == 1  # recovered node by node, not rerun


def test_cli_eval_server_dies_mid_run_then_rerun_finishes(
    stubs: Callable[..., StubServer], tmp_path: Path
) -> None:
    """`tpo eval` with the LLM judge on the same policy server; the server dies (SIGKILL)
    at the 5th sampling request and comes back for the rerun."""
    policy = stubs("judge-policy", {"faults": [{"path": "chat", "kind": "sample", "skip": 4,
                                                "action": "die"}]})  # fmt: skip
    prompts = questions(10)
    data, out = write_prompts(tmp_path / "d.jsonl", prompts), tmp_path / "r.jsonl"
    args = ["eval", str(data), "-o", str(out), "-c", "2", "-n", "2", "-d", "1",
            "--max-tokens", "8", "--policy-url", policy.openai_base_url,
            "--policy-model", POLICY_MODEL]  # fmt: skip

    first = run_tpo([*args, "--retries", "1"])
    assert first.returncode == 1, first.stderr
    assert "Traceback" not in first.stderr
    assert "rerun the same command to retry the rest" in first.stderr
    done = read_jsonl(out)  # whole lines only
    # -c 2: the 5th prompt starts once 3 are finished; the 4th may have been in flight
    assert 3 <= len(done) <= 4 and len({x["id"] for x in done}) == len(done)

    policy.wait_dead()
    policy.start({})
    sampled_before = policy.count("chat", "sample")
    second = run_tpo(args)
    assert second.returncode == 0, second.stderr
    assert f"skipped {len(done)} results" in second.stderr
    lines = read_jsonl(out)
    assert lines[: len(done)] == done
    assert sorted(x["id"] for x in lines) == sorted(f"p{i}" for i in range(len(prompts)))
    rerun = [r["query"] for r in policy.requests("chat", "sample")][sampled_before:]
    assert sorted(rerun) == sorted(set(prompts) - {x["prompt"] for x in done})
