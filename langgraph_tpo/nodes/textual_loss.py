"""``textual_loss``: the policy critiques chosen against rejected (chosen alone in revision)."""

from __future__ import annotations

from langgraph_tpo.graph.state import TPOState
from langgraph_tpo.nodes.common import (
    NodeDeps,
    NodeFn,
    Update,
    conversation_text,
    merge_step,
    run_config,
)
from langgraph_tpo.policy import generate
from langgraph_tpo.prompts import loss_messages
from langgraph_tpo.truncation import truncate_tokens


def critique_inputs(deps: NodeDeps, state: TPOState, max_tokens: int, mode: str):
    """(query, chosen, rejected) as the critique prompts quote them, cut to the token cap.

    Rejected is None in revision mode, and when it is the chosen text itself (one
    candidate, or identical texts), where a pairwise comparison would say nothing.
    """
    chosen = state["chosen"]["text"]
    rejected = state["rejected"]["text"] if state.get("rejected") else None
    if mode == "revision" or rejected == chosen:
        rejected = None

    def cut(text: str) -> str:
        return truncate_tokens(text, max_tokens, deps.tokenizer)

    return (
        conversation_text(state["conversation"]),
        cut(chosen),
        cut(rejected) if rejected is not None else None,
    )


def make_textual_loss_node(deps: NodeDeps) -> NodeFn:
    async def textual_loss(state: TPOState) -> Update:
        """Reads ``chosen``, ``rejected``, ``conversation``; writes ``textual_loss``."""
        config = run_config(deps)
        query, chosen, rejected = critique_inputs(
            deps, state, config.max_context_tokens, config.mode
        )
        result = await generate(deps.policy, loss_messages(query, chosen, rejected), 1, config)
        return {
            "textual_loss": result.texts[0].strip() if result.texts else "",
            "step": merge_step(state, usage=result.usage),
        }

    return textual_loss
