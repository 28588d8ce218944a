"""``select``: pick chosen (best) and rejected (worst) over the whole cache, log the iteration."""

from __future__ import annotations

import time
from statistics import fmean
from typing import Any

from langchain_core.messages import AIMessage
from langgraph.config import get_stream_writer

from langgraph_tpo.graph.routing import stop_reason
from langgraph_tpo.graph.state import Candidate, TPOState
from langgraph_tpo.nodes.common import NodeDeps, NodeFn, Update, brief, run_config


def best_and_worst(candidates: list[Candidate]) -> tuple[Candidate, Candidate]:
    """Best: highest score, earliest on ties. Worst: lowest score, latest on ties.

    Breaking ties in opposite directions keeps chosen and rejected distinct whenever
    the cache holds two or more candidates, even if every score is equal.
    """
    best = max(candidates, key=lambda c: c["score"])
    worst = min(reversed(candidates), key=lambda c: c["score"])
    return best, worst


def make_select_node(deps: NodeDeps) -> NodeFn:
    async def select(state: TPOState) -> Update:
        """Reads ``candidates``, ``trajectory``, ``step``; writes ``chosen``, ``rejected``,
        ``response``, ``score``, ``stop_reason`` and appends this iteration to ``trajectory``.
        """
        start = time.perf_counter()
        config = run_config(deps)
        candidates = state.get("candidates") or []
        iteration = state.get("iteration", 0)
        history = [e["best_score"] for e in state.get("trajectory") or []]
        if candidates:
            best, worst = best_and_worst(candidates)
            reason = stop_reason(config, iteration, [*history, best["score"]])
        else:
            best = worst = None
            reason = "no_candidates"
        if (state.get("step") or {}).get("human_stop"):
            reason = "human_stop"
        entry = _trajectory_entry(state, iteration, best, reason)
        entry["timings"]["select"] = time.perf_counter() - start
        _emit_progress(entry)
        update: Update = {
            "chosen": best,
            "rejected": worst,
            "response": best["text"] if best else "",
            "score": best["score"] if best else None,
            "stop_reason": reason,
            "trajectory": [entry],
            "step": {},
        }
        if reason and state.get("messages"):
            update["messages"] = [final_message(best, iteration, reason)]
        return update

    return select


def final_message(best: Candidate | None, iteration: int, reason: str) -> AIMessage:
    """The reply appended to ``messages``: the best response, with TPO's summary attached."""
    tpo = {
        "score": best["score"] if best else None,
        "iterations": iteration,
        "stop_reason": reason,
    }
    return AIMessage(
        content=best["text"] if best else "",
        name="tpo",
        response_metadata={"tpo": tpo},
    )


def _emit_progress(entry: dict[str, Any]) -> None:
    """A ``stream_mode="custom"`` event per iteration: best response and score so far."""
    get_stream_writer()(
        {
            "event": "tpo_iteration",
            "iteration": entry["iteration"],
            "best_score": entry["best_score"],
            "best_response": entry["best_response"],
            "new_scores": entry["new_scores"],
            "stop_reason": entry.get("stop_reason"),
        }
    )


def _trajectory_entry(
    state: TPOState, iteration: int, best: Candidate | None, reason: str | None
) -> dict[str, Any]:
    step = state.get("step") or {}
    new_scores = step.get("new_scores", [])
    entry: dict[str, Any] = {
        "iteration": iteration,
        "chosen": brief(state.get("chosen")) if iteration else None,
        "rejected": brief(state.get("rejected")) if iteration else None,
        "textual_loss": state.get("textual_loss") if iteration else None,
        "textual_gradient": state.get("textual_gradient") if iteration else None,
        "new_scores": new_scores,
        "mean_new_score": fmean(new_scores) if new_scores else None,
        "dropped": step.get("dropped", 0),
        "reward_requests": step.get("reward_calls", 0),
        "extraction": step.get("extraction"),
        "review": step.get("review"),
        "best_score": best["score"] if best else None,
        "best_response": best["text"] if best else None,
        "timings": dict(step.get("timings", {})),
        "usage": step.get("usage", {}),
    }
    if reason:
        entry["stop_reason"] = reason
    return entry
