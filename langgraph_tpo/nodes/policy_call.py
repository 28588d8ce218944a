"""What the textual loss, gradient and update prompts quote, and fitting them in context.

Truncation policy: chosen and rejected responses, the critique and the suggestions are cut
to ``max_context_tokens`` each. When the server still answers that the prompt does not
fit the context window, they are cut to a quarter of that and the call is retried once;
if it fails again the error is reported (``ContextTooLongError``). The query is never cut.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from langgraph_tpo.config import TPOConfig
from langgraph_tpo.errors import ContextTooLongError
from langgraph_tpo.graph.state import TPOState
from langgraph_tpo.nodes.common import NodeDeps, Update, conversation_text, prompts_for, run_config
from langgraph_tpo.policy import Generations, generate
from langgraph_tpo.prompts import PromptSet
from langgraph_tpo.prompts.render import Quoted
from langgraph_tpo.truncation import truncate_tokens

MIN_CAP = 16

__all__ = ["MIN_CAP", "Quoted", "call_policy", "critique", "quoted"]
Render = Callable[[PromptSet, Quoted], Sequence[Any]]


def quoted(deps: NodeDeps, state: TPOState, config: TPOConfig, cap: int) -> Quoted:
    chosen = state["chosen"]["text"]
    rejected = state["rejected"]["text"] if state.get("rejected") else None
    if config.mode == "revision" or rejected == chosen:
        rejected = None

    def cut(text: str) -> str:
        return truncate_tokens(text, cap, deps.tokenizer)

    return Quoted(
        query=conversation_text(state["conversation"]),
        chosen=cut(chosen),
        rejected=cut(rejected) if rejected is not None else None,
        textual_loss=cut(state.get("textual_loss") or ""),
        textual_gradient=cut(state.get("textual_gradient") or ""),
    )


async def call_policy(
    deps: NodeDeps,
    state: TPOState,
    config: TPOConfig,
    build: Callable[[Quoted], Sequence[Any]],
    n: int,
    *,
    step: str,
    seed_offset: int = 0,
    metadata: dict[str, Any] | None = None,
) -> Generations:
    """Call the policy on ``build(quoted texts)``; on a context-length error, cut and retry once."""
    cap = config.max_context_tokens

    async def attempt(cap: int) -> Generations:
        messages = build(quoted(deps, state, config, cap))
        return await generate(
            deps.policy, messages, n, config, step=step, seed_offset=seed_offset, metadata=metadata
        )

    try:
        return await attempt(cap)
    except ContextTooLongError:
        cap = max(MIN_CAP, cap // 4)
    try:
        return await attempt(cap)
    except ContextTooLongError as exc:
        raise ContextTooLongError(
            f"{exc} (after cutting quoted responses to {cap} tokens; shorten the query or "
            "lower max_tokens)"
        ) from exc


async def critique(deps: NodeDeps, state: TPOState, step: str, render: Render) -> Update:
    """The single-text call of ``textual_loss`` and ``textual_gradient``: the policy's
    text (stripped) under the ``step`` key, and its usage added to ``iteration_usage``."""
    config = run_config(deps)
    prompts = prompts_for(deps, config)
    result = await call_policy(deps, state, config, lambda q: render(prompts, q), 1, step=step)
    text = result.texts[0].strip() if result.texts else ""
    return {step: text, "iteration_usage": result.usage.as_dict()}
