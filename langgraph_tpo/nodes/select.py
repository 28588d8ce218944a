"""``select``: pick chosen (best) and rejected (worst) over the whole cache, log the iteration."""

from __future__ import annotations

import time
from operator import itemgetter
from statistics import fmean

from langchain_core.messages import AIMessage
from langgraph.config import get_stream_writer

from langgraph_tpo.graph.routing import Spent, has_budget, stop_reason
from langgraph_tpo.graph.state import Candidate, TPOState, TrajectoryEntry, UsageRecord
from langgraph_tpo.nodes.common import (
    NodeDeps,
    NodeFn,
    Update,
    brief,
    new_iteration_record,
    run_config,
)

_score = itemgetter("score")


def best_and_worst(candidates: list[Candidate]) -> tuple[Candidate, Candidate]:
    """Best: highest score, earliest on ties. Worst: lowest score, latest on ties.

    Breaking ties in opposite directions keeps chosen and rejected distinct whenever
    the cache holds two or more candidates, even if every score is equal.
    """
    best = max(candidates, key=_score)
    worst = min(reversed(candidates), key=_score)
    return best, worst


def make_select_node(deps: NodeDeps) -> NodeFn:
    async def select(state: TPOState) -> Update:
        """Reads ``candidates``, ``trajectory``, the iteration's record (``new_scores``,
        ``iteration_timings``, ``iteration_usage``, ``review_decision``, ...); writes
        ``chosen``, ``rejected``, ``response``, ``score``, ``stop_reason``,
        ``finish_reason`` (``length`` when ``cut_at_max_tokens`` holds the response), appends this
        iteration to ``trajectory`` and empties the record for the next one.

        With a budget (``max_total_tokens``, ``max_seconds``) it also reads ``started_at``
        and the usage of every iteration (see :func:`spent_so_far`).
        """
        start = time.perf_counter()
        config = run_config(deps)
        candidates = state.get("candidates") or []
        iteration = state.get("iteration", 0)
        history = [e["best_score"] for e in state.get("trajectory") or []]
        if candidates:
            best, worst = best_and_worst(candidates)
            spent = spent_so_far(state) if has_budget(config) else None
            reason = stop_reason(config, iteration, [*history, best["score"]], spent)
        else:
            best = worst = None
            reason = "no_candidates"
        if state.get("review_decision") == "stop":
            reason = "human_stop"
        entry = _trajectory_entry(state, iteration, best, reason)
        entry["timings"]["select"] = time.perf_counter() - start
        _emit_progress(entry)
        update: Update = {
            **new_iteration_record(state),
            "chosen": best,
            "rejected": worst,
            "response": best["text"] if best else "",
            "score": best["score"] if best else None,
            "finish_reason": finish_reason(state, best),
            "stop_reason": reason,
            "trajectory": [entry],
        }
        if reason and state.get("messages"):
            update["messages"] = [final_message(best, iteration, reason, update["finish_reason"])]
        return _only_changes(state, update)

    return select


def spent_so_far(state: TPOState) -> Spent:
    """The run's policy tokens (every logged iteration's usage and the one in flight) and
    the wall seconds since ``sample`` stored ``started_at``."""
    usages: list[UsageRecord] = [e["usage"] for e in state.get("trajectory") or []]
    usages.append(state.get("iteration_usage") or {})
    tokens = sum(u.get("prompt_tokens", 0) + u.get("completion_tokens", 0) for u in usages)
    started = state.get("started_at")
    return Spent(tokens, time.time() - started if started is not None else 0.0)


# Written every iteration, though usually unchanged (the best stays the best for a while);
# each write costs the graph a channel update.
_KEPT_WHEN_EQUAL = ("chosen", "rejected", "response", "score", "finish_reason", "stop_reason")


def finish_reason(state: TPOState, best: Candidate | None) -> str:
    """``length`` when the policy ended the best response at ``max_tokens``, else ``stop``."""
    cut = state.get("cut_at_max_tokens") or ()
    return "length" if best is not None and best["text"] in cut else "stop"


def _only_changes(state: TPOState, update: Update) -> Update:
    """``update`` without the keys whose value the state already holds."""
    for key in _KEPT_WHEN_EQUAL:
        if key in state and state[key] == update[key]:  # type: ignore[literal-required]
            del update[key]
    return update


def final_message(
    best: Candidate | None, iteration: int, reason: str, finish: str = "stop"
) -> AIMessage:
    """The reply appended to ``messages``: the best response, with TPO's summary and its
    ``finish_reason`` attached."""
    tpo = {
        "score": best["score"] if best else None,
        "iterations": iteration,
        "stop_reason": reason,
    }
    return AIMessage(
        content=best["text"] if best else "",
        name="tpo",
        response_metadata={"tpo": tpo, "finish_reason": finish},
    )


def _emit_progress(entry: TrajectoryEntry) -> None:
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
) -> TrajectoryEntry:
    new_scores = state.get("new_scores") or []
    critiqued = bool(iteration)  # iteration 0 is the initial sampling: nothing critiqued
    entry = TrajectoryEntry(
        iteration=iteration,
        chosen=brief(state.get("chosen")) if critiqued else None,
        rejected=brief(state.get("rejected")) if critiqued else None,
        textual_loss=state.get("textual_loss") if critiqued else None,
        textual_gradient=state.get("textual_gradient") if critiqued else None,
        new_scores=new_scores,
        mean_new_score=fmean(new_scores) if new_scores else None,
        dropped=state.get("dropped", 0),
        reward_requests=state.get("reward_requests", 0),
        extraction=state.get("extraction_counts") or None,
        review=state.get("review_decision"),
        best_score=best["score"] if best else None,
        best_response=best["text"] if best else None,
        timings=dict(state.get("iteration_timings") or {}),
        usage=state.get("iteration_usage") or {},
    )
    if reason:
        entry["stop_reason"] = reason
    return entry
