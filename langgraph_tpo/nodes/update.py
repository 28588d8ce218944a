"""``update``: the optimizer step; the policy writes N new responses applying the gradient."""

from __future__ import annotations

from collections import Counter

from langgraph_tpo.extraction import Extraction, extract_response
from langgraph_tpo.graph.state import TPOState
from langgraph_tpo.nodes.common import (
    NodeDeps,
    NodeFn,
    Update,
    finished,
    prompts_for,
    rejection,
    run_config,
)
from langgraph_tpo.nodes.policy_call import call_policy
from langgraph_tpo.nodes.review import review_gradient
from langgraph_tpo.prompts import PromptSet
from langgraph_tpo.prompts.render import make_nonce, safe_nonce, update_messages


def run_delimiters(prompts: PromptSet, state: TPOState, seed: int | None) -> tuple[str, str]:
    """This run's update delimiters: the nonce stored by ``sample`` (derived from seed and
    conversation for a state without one), changed if a quoted text contains it."""
    nonce = state.get("nonce") or make_nonce(seed or 0, state["conversation"])
    quoted = [state.get("query"), state.get("textual_loss"), state.get("textual_gradient")]
    quoted += [(state.get(k) or {}).get("text") for k in ("chosen", "rejected")]
    quoted += [m["content"] for m in state["conversation"]]
    return prompts.delimiters(safe_nonce(nonce, quoted))


def read_output(
    prompts: PromptSet,
    text: str,
    delimiters: tuple[str, str],
    rule: str,
    *,
    drop_loops: bool = False,
) -> tuple[str | None, Extraction]:
    """The new response in one update output; scaffolding echoed back counts as none, and
    so does a loop when ``drop_loops``."""
    response, used = extract_response(text, delimiters, rule=rule)  # type: ignore[arg-type]
    if response is None:
        return None, used
    reason = rejection(prompts, response, drop_loops)
    return (None, reason) if reason else (response, used)  # type: ignore[return-value]


def make_update_node(deps: NodeDeps) -> NodeFn:
    async def update(state: TPOState) -> Update:
        """Reads ``chosen``, ``rejected``, ``textual_loss``, ``textual_gradient``, ``nonce``,
        ``run_stop`` (the stop strings its responses are cut at);
        writes ``pending``, the next ``iteration`` and, with ``review_gradient``, the human's
        ``review_decision`` (and the edited ``textual_gradient``).

        Outputs with no usable text, echoed scaffolding or (``drop_loops``) a loop are
        dropped (``dropped``); ``extraction_counts`` counts how each output was read. Each
        response is cut before the first ``stop`` string (the call itself gets none: its
        output wraps the response in delimiters); ``cut_at_max_tokens`` gets those the
        policy ended at ``max_tokens``.
        """
        config = run_config(deps)
        prompts = prompts_for(deps, config)
        iteration = state.get("iteration", 0) + 1
        reviewed: Update = {}
        if config.review_gradient:
            review = review_gradient(state)
            reviewed = {"review_decision": review.action}
            if review.action == "stop":
                return {**reviewed, "pending": [], "iteration": iteration}
            reviewed["textual_gradient"] = review.textual_gradient
            state = {**state, **reviewed}
        delimiters = run_delimiters(prompts, state, config.seed)
        result = await call_policy(
            deps,
            state,
            config,
            lambda q: update_messages(prompts, q, delimiters, config.num_samples),
            config.num_samples,
            step="update",
            seed_offset=iteration,
            metadata={"tpo_delimiters": list(delimiters)},
        )
        read = {  # identical outputs (common at low temperature) are read once
            text: read_output(
                prompts, text, delimiters, config.extraction, drop_loops=config.drop_loops
            )
            for text in dict.fromkeys(result.texts)
        }
        extracted = [read[text] for text in result.texts]
        stop = state.get("run_stop")
        cut, at_max = finished([t for t, _ in extracted], result.finish_reasons, stop)
        pending = [text for text in cut if text]
        return {
            **reviewed,
            "pending": pending,
            "iteration": iteration,
            "iteration_usage": result.usage.as_dict(),
            "cut_at_max_tokens": at_max,
            "extraction_counts": dict(Counter(rule for _, rule in extracted)),
            "dropped": len(extracted) - len(pending),
        }

    return update
