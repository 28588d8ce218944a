"""``textual_gradient``: the policy turns the critique into suggestions for improving chosen."""

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
from langgraph_tpo.prompts.render import gradient_messages


def make_textual_gradient_node(deps: NodeDeps) -> NodeFn:
    async def textual_gradient(state: TPOState) -> Update:
        """Reads ``chosen``, ``rejected``, ``textual_loss``; writes ``textual_gradient``."""
        config = run_config(deps)
        prompts = prompts_for(deps, config)
        result, cut_to = await call_policy(
            deps,
            state,
            config,
            lambda q: gradient_messages(prompts, q),
            1,
            step="textual_gradient",
        )
        step = merge_step(state, usage=result.usage)
        if cut_to:
            step["context_cut_to"] = cut_to
        text = result.texts[0].strip() if result.texts else ""
        return {"textual_gradient": text, "step": step}

    return textual_gradient
