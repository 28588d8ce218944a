"""``textual_gradient``: the policy turns the critique into suggestions for improving chosen."""

from __future__ import annotations

from langgraph_tpo.graph.state import TPOState
from langgraph_tpo.nodes.common import NodeDeps, NodeFn, Update
from langgraph_tpo.nodes.policy_call import critique_step
from langgraph_tpo.prompts.render import gradient_messages


def make_textual_gradient_node(deps: NodeDeps) -> NodeFn:
    async def textual_gradient(state: TPOState) -> Update:
        """Reads ``chosen``, ``rejected``, ``textual_loss``; writes ``textual_gradient``."""
        text, step = await critique_step(deps, state, "textual_gradient", gradient_messages)
        return {"textual_gradient": text, "step": step}

    return textual_gradient
