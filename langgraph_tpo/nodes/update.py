"""``update``: the optimizer step; the policy writes N new responses applying the gradient."""

from __future__ import annotations

from collections import Counter

from langgraph_tpo.extraction import extract_response
from langgraph_tpo.graph.state import TPOState
from langgraph_tpo.nodes.common import NodeDeps, NodeFn, Update, merge_step, run_config
from langgraph_tpo.nodes.policy_call import Quoted, call_policy
from langgraph_tpo.nodes.review import review_gradient
from langgraph_tpo.prompts import update_messages


def _messages(q: Quoted) -> list[tuple[str, str]]:
    return update_messages(q.query, q.chosen, q.textual_gradient)


def make_update_node(deps: NodeDeps) -> NodeFn:
    async def update(state: TPOState) -> Update:
        """Reads ``chosen``, ``textual_gradient``; writes ``pending`` and the next ``iteration``.

        Outputs with no usable text are dropped and counted in ``step["extraction"]``.
        """
        config = run_config(deps)
        iteration = state.get("iteration", 0) + 1
        reviewed: Update = {}
        if config.review_gradient:
            review = review_gradient(state)
            if review.action == "stop":
                return {
                    "pending": [],
                    "iteration": iteration,
                    "step": merge_step(state, human_stop=True, review="stop"),
                }
            reviewed = {"textual_gradient": review.textual_gradient}
            state = {**state, **reviewed, "step": merge_step(state, review=review.action)}
        result, cut_to = await call_policy(
            deps, state, config, _messages, config.num_samples, seed_offset=iteration
        )
        extracted = [extract_response(text) for text in result.texts]
        pending = [text for text, _ in extracted if text is not None]
        return {
            **reviewed,
            "pending": pending,
            "iteration": iteration,
            "step": merge_step(
                state,
                usage=result.usage,
                extraction=dict(Counter(rule for _, rule in extracted)),
                dropped=len(extracted) - len(pending),
                **({"context_cut_to": cut_to} if cut_to else {}),
            ),
        }

    return update
