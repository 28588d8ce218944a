"""``textual_gradient``: the policy turns the critique into suggestions for improving chosen."""

from __future__ import annotations

from langgraph_tpo.graph.state import TPOState
from langgraph_tpo.nodes.common import NodeDeps, NodeFn, Update
from langgraph_tpo.nodes.policy_call import critique
from langgraph_tpo.prompts.render import gradient_messages


def make_textual_gradient_node(deps: NodeDeps) -> NodeFn:
    async def textual_gradient(state: TPOState) -> Update:
        """Reads ``chosen``, ``rejected``, ``textual_loss``; writes ``textual_gradient`` and
        adds the call to ``iteration_usage``."""
        return await critique(deps, state, "textual_gradient", gradient_messages)

    return textual_gradient
