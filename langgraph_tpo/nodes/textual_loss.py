"""``textual_loss``: the policy critiques chosen against rejected (chosen alone in revision)."""

from __future__ import annotations

from langgraph_tpo.graph.state import TPOState
from langgraph_tpo.nodes.common import NodeDeps, NodeFn, Update
from langgraph_tpo.nodes.policy_call import critique
from langgraph_tpo.prompts.render import loss_messages


def make_textual_loss_node(deps: NodeDeps) -> NodeFn:
    async def textual_loss(state: TPOState) -> Update:
        """Reads ``chosen``, ``rejected``, ``conversation``; writes ``textual_loss`` and adds
        the call to ``iteration_usage``."""
        return await critique(deps, state, "textual_loss", loss_messages)

    return textual_loss
