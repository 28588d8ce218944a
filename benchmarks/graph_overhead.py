"""Benchmark 1: graph overhead per iteration, against bare LangGraph nodes (the floor).

Instant fake policy and reward, N=5, D=20. Times the TPO graph with no checkpointer and
with the SQLite checkpointer, and the same loop of six no-op async nodes.

    python -m benchmarks.graph_overhead [--repeats 20] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypedDict

from langchain_core.messages import HumanMessage
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import END, START, StateGraph

from benchmarks.common import contention, show_table, verdict, write_json
from langgraph_tpo import TPOConfig, create_tpo_graph
from langgraph_tpo.fakes import FakeBatchReward, InstantPolicy

N, D = 5, 20
RECURSION = {"recursion_limit": 10 * (D + 2)}


class FloorState(TypedDict, total=False):
    iteration: int


def floor_graph(policy: InstantPolicy | None = None) -> Any:
    """The same six-node loop with nodes that do nothing (or only call ``policy`` once)."""
    prompt = [HumanMessage("q")]

    async def idle(state: FloorState) -> dict:
        return {}

    async def noop(state: FloorState) -> dict:
        if policy is not None:
            await policy.agenerate([prompt], n=N)
        return {}

    async def update(state: FloorState) -> dict:
        await noop(state)
        return {"iteration": state.get("iteration", 0) + 1}

    async def route(state: FloorState) -> str:
        return END if state.get("iteration", 0) >= D else "textual_loss"

    g = StateGraph(FloorState)
    for name in ("sample", "textual_loss", "textual_gradient"):
        g.add_node(name, noop)
    for name in ("reward_score", "select"):
        g.add_node(name, idle)
    g.add_node("update", update)
    g.add_edge(START, "sample")
    g.add_edge("sample", "reward_score")
    g.add_edge("reward_score", "select")
    g.add_conditional_edges("select", route, ["textual_loss", END])
    g.add_edge("textual_loss", "textual_gradient")
    g.add_edge("textual_gradient", "update")
    g.add_edge("update", "reward_score")
    return g.compile()


def tpo_graph(checkpointer: Any = None) -> Any:
    return create_tpo_graph(
        InstantPolicy(),
        FakeBatchReward(),
        TPOConfig(num_samples=N, max_iterations=D),
        checkpointer=checkpointer,
    )


async def timed_ms(run: Callable[[int], Awaitable[Any]], i: int) -> float:
    start = time.perf_counter()
    await run(i)
    return (time.perf_counter() - start) / (D + 1) * 1000  # D iterations + initial sampling


async def measure(repeats: int) -> dict[str, list[float]]:
    """Times per iteration of each variant, one per repeat; the variants interleave so drift
    hits all alike."""
    floor, calls, plain = floor_graph(), floor_graph(InstantPolicy()), tpo_graph()
    with tempfile.TemporaryDirectory() as tmp:
        async with AsyncSqliteSaver.from_conn_string(str(Path(tmp) / "cp.db")) as saver:
            sqlite = tpo_graph(saver)

            async def run_sqlite(i: int) -> Any:
                config = {**RECURSION, "configurable": {"thread_id": f"t{i}"}}
                return await sqlite.ainvoke({"query": "q"}, config)

            runs: dict[str, Callable[[int], Awaitable[Any]]] = {
                "floor": lambda i: floor.ainvoke({}, RECURSION),
                "floor_calls": lambda i: calls.ainvoke({}, RECURSION),
                "tpo": lambda i: plain.ainvoke({"query": "q"}, RECURSION),
                "tpo_sqlite": run_sqlite,
            }
            times: dict[str, list[float]] = {name: [] for name in runs}
            for i in range(-1, repeats):  # -1: warm-up, not counted
                for name, run in runs.items():
                    ms = await timed_ms(run, i)
                    if i >= 0:
                        times[name].append(ms)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    before = contention()
    times = asyncio.run(measure(args.repeats))
    ms = {name: min(values) for name, values in times.items()}
    median = {name: statistics.median(values) for name, values in times.items()}
    labels = {
        "floor": "bare LangGraph loop (floor)",
        "floor_calls": "floor + the same policy calls",
        "tpo": "TPO graph, no checkpointer",
        "tpo_sqlite": "TPO graph, SQLite checkpointer",
    }
    rows = [
        [label, ms[name], ms[name] / ms["floor"], median[name], median[name] / median["floor"]]
        for name, label in labels.items()
    ]
    markdown = show_table(
        f"Graph overhead, N={N}, D={D} ({args.repeats} repeats)",
        ["variant", "best ms / iteration", "x floor", "median ms / iteration", "x floor (median)"],
        rows,
    )
    paired = statistics.median(t / f for t, f in zip(times["tpo"], times["floor"], strict=True))
    print(f"TPO / floor within each round (median over rounds): {paired:.3f}")
    target = ms["tpo"] / ms["floor"] <= 2.0
    print(f"target (TPO without checkpointer <= 2x floor, best of): {verdict(target)}")
    write_json(
        "graph_overhead",
        {
            "n": N,
            "d": D,
            "repeats": args.repeats,
            "contention": {"before": before, "after": contention()},
            "ms_per_iteration": ms,
            "median_ms_per_iteration": median,
            "ratio_to_floor": ms["tpo"] / ms["floor"],
            "median_ratio_to_floor": median["tpo"] / median["floor"],
            "paired_median_ratio_to_floor": paired,
            "target_met": target,
            "markdown": markdown,
        },
        args.out,
    )


if __name__ == "__main__":
    main()
