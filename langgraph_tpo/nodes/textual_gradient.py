"""``textual_gradient``: the policy turns the critique into suggestions for improving chosen."""

from __future__ import annotations

from langgraph_tpo.graph.state import TPOState
from langgraph_tpo.nodes.common import NodeDeps, NodeFn, Update, merge_step, run_config
from langgraph_tpo.nodes.textual_loss import critique_inputs
from langgraph_tpo.policy import generate
from langgraph_tpo.prompts import gradient_messages


def make_textual_gradient_node(deps: NodeDeps) -> NodeFn:
    async def textual_gradient(state: TPOState) -> Update:
        """Reads ``chosen``, ``rejected``, ``textual_loss``; writes ``textual_gradient``."""
        config = run_config(deps)
        query, chosen, rejected = critique_inputs(
            deps, state, config.max_context_tokens, config.mode
        )
        messages = gradient_messages(query, chosen, rejected, state.get("textual_loss") or "")
        result = await generate(deps.policy, messages, 1, config)
        return {
            "textual_gradient": result.texts[0].strip() if result.texts else "",
            "step": merge_step(state, usage=result.usage),
        }

    return textual_gradient
