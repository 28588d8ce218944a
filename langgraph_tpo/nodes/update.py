"""``update``: the optimizer step; the policy writes N new responses applying the gradient."""

from __future__ import annotations

from collections import Counter

from langgraph_tpo.extraction import extract_response
from langgraph_tpo.graph.state import TPOState
from langgraph_tpo.nodes.common import NodeDeps, NodeFn, Update, merge_step, run_config
from langgraph_tpo.nodes.review import review_gradient
from langgraph_tpo.nodes.textual_loss import critique_inputs
from langgraph_tpo.policy import generate
from langgraph_tpo.prompts import update_messages


def make_update_node(deps: NodeDeps) -> NodeFn:
    async def update(state: TPOState) -> Update:
        """Reads ``chosen``, ``textual_gradient``; writes ``pending`` and the next ``iteration``.

        Outputs with no usable text are dropped and counted in ``step["extraction"]``.
        """
        config = run_config(deps)
        iteration = state.get("iteration", 0) + 1
        gradient = state.get("textual_gradient") or ""
        reviewed: Update = {}
        if config.review_gradient:
            review = review_gradient(state)
            if review.action == "stop":
                return {
                    "pending": [],
                    "iteration": iteration,
                    "step": merge_step(state, human_stop=True, review="stop"),
                }
            gradient = review.textual_gradient
            reviewed = {"textual_gradient": gradient}
            state = {**state, "step": merge_step(state, review=review.action)}
        query, chosen, _ = critique_inputs(deps, state, config.max_context_tokens, config.mode)
        messages = update_messages(query, chosen, gradient)
        result = await generate(
            deps.policy, messages, config.num_samples, config, seed_offset=iteration
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
            ),
        }

    return update
