"""``textual_loss``: the policy critiques chosen against rejected (chosen alone in revision)."""

from __future__ import annotations

from langgraph_tpo.graph.state import TPOState
from langgraph_tpo.nodes.common import (
    NodeDeps,
    NodeFn,
    Update,
    merge_step,
    prompts_for,
    run_config,
)
from langgraph_tpo.nodes.policy_call import call_policy
from langgraph_tpo.prompts.render import loss_messages


def make_textual_loss_node(deps: NodeDeps) -> NodeFn:
    async def textual_loss(state: TPOState) -> Update:
        """Reads ``chosen``, ``rejected``, ``conversation``; writes ``textual_loss``."""
        config = run_config(deps)
        prompts = prompts_for(deps, config)
        result, cut_to = await call_policy(
            deps, state, config, lambda q: loss_messages(prompts, q), 1, step="textual_loss"
        )
        step = merge_step(state, usage=result.usage)
        if cut_to:
            step["context_cut_to"] = cut_to
        return {"textual_loss": result.texts[0].strip() if result.texts else "", "step": step}

    return textual_loss
