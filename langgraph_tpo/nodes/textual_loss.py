"""``textual_loss``: the policy critiques chosen against rejected (chosen alone in revision)."""

from __future__ import annotations

from langgraph_tpo.graph.state import TPOState
from langgraph_tpo.nodes.common import NodeDeps, NodeFn, Update, merge_step, run_config
from langgraph_tpo.nodes.policy_call import Quoted, call_policy
from langgraph_tpo.prompts import loss_messages


def _messages(q: Quoted) -> list[tuple[str, str]]:
    return loss_messages(q.query, q.chosen, q.rejected)


def make_textual_loss_node(deps: NodeDeps) -> NodeFn:
    async def textual_loss(state: TPOState) -> Update:
        """Reads ``chosen``, ``rejected``, ``conversation``; writes ``textual_loss``."""
        config = run_config(deps)
        result, cut_to = await call_policy(deps, state, config, _messages, 1)
        step = merge_step(state, usage=result.usage)
        if cut_to:
            step["context_cut_to"] = cut_to
        return {"textual_loss": result.texts[0].strip() if result.texts else "", "step": step}

    return textual_loss
