"""``sample``: draw N responses to the query (the initial population)."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from langchain_core.messages import BaseMessage, convert_to_messages
from langgraph.types import Overwrite

from langgraph_tpo.context_window import check_fits_context
from langgraph_tpo.errors import ConfigError
from langgraph_tpo.graph.state import TPOState
from langgraph_tpo.nodes.common import (
    NodeDeps,
    NodeFn,
    Update,
    finished,
    new_iteration_record,
    prompts_for,
    rejection,
    run_config,
)
from langgraph_tpo.nodes.review import check_can_review
from langgraph_tpo.policy import check_penalties, generate
from langgraph_tpo.prompts import PromptSet
from langgraph_tpo.prompts.render import make_nonce, sample_messages
from langgraph_tpo.reward import Conversation, chat_role


def read_conversation(state: TPOState) -> Conversation:
    """The conversation to answer, from ``messages`` or ``query``; rejects unusable input.

    With ``messages``, the conversation must end with a user turn; tool calls and tool
    results are not part of what the reward model sees. Both ``query`` and ``messages``
    is ambiguous and rejected, unless the ``query`` is the one an earlier run on the same
    thread wrote (the last user turn of the ``conversation`` it answered). Other keys (a
    parent graph's state) are ignored.
    """
    query: Any = state.get("query")
    if state.get("messages"):
        if query is not None and not _left_by_earlier_run(state, query):
            raise ConfigError(
                "input has both 'query' and 'messages': give one (the query "
                f"{_preview(query)} or the conversation in messages)"
            )
        return _from_messages(state["messages"])
    if query is None:
        raise ConfigError("input needs a 'query' (a non-empty string) or 'messages'")
    if not isinstance(query, str):
        raise ConfigError(f"query must be a string, got {type(query).__name__}")
    if not query.strip():
        raise ConfigError("query is empty or whitespace only")
    return [{"role": "user", "content": query}]


def read_stop(state: TPOState) -> list[str] | None:
    """The run's ``stop`` strings (None when none); anything but a list of non-empty strings
    is a ConfigError."""
    stop: Any = state.get("stop")
    if stop is None:
        return None
    if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop):
        raise ConfigError(f"stop must be a list of non-empty strings, got {stop!r}")
    return stop or None


def _left_by_earlier_run(state: TPOState, query: Any) -> bool:
    """Whether ``query`` is what ``sample`` wrote on this thread before (checkpointed)."""
    previous = state.get("conversation")
    return bool(previous) and previous[-1]["content"] == query


def _preview(text: Any, limit: int = 40) -> str:
    text = str(text)
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _from_messages(messages: list[Any]) -> Conversation:
    try:
        parsed: list[BaseMessage] = convert_to_messages(messages)
    except (ValueError, TypeError, NotImplementedError) as exc:
        raise ConfigError(f"messages: not a list of chat messages ({exc})") from exc
    conversation = [
        {"role": role, "content": str(m.text)}
        for m in parsed
        if (role := chat_role(m)) is not None and m.text.strip()
    ]
    if not any(m["role"] == "user" for m in conversation):
        raise ConfigError("messages: the conversation has no user message to answer")
    if conversation[-1]["role"] != "user":
        raise ConfigError(
            f"messages: the last message must be the user's turn to answer, "
            f"got {article(conversation[-1]['role'])} message"
        )
    return conversation


def usable_samples(
    prompts: PromptSet, outputs: list[str], drop_loops: bool
) -> tuple[list[str], dict[str, int]]:
    """The outputs worth scoring, and how many were ``scaffolding`` or ``degenerate``.

    Empty outputs and echoes of the prompt set go. Loops go too when ``drop_loops``,
    unless every remaining output loops: a run then still has an answer to return, and
    the count says what it is made of.
    """
    written = [t for t in outputs if t.strip()]
    reasons = [rejection(prompts, t, drop_loops) for t in written]
    counts = dict(Counter(r for r in reasons if r))
    kept = [t for t, reason in zip(written, reasons, strict=True) if reason is None]
    if not kept:  # every output that is not an echo loops: keep the loops
        kept = [t for t, reason in zip(written, reasons, strict=True) if reason == "degenerate"]
    return kept, counts


def make_sample_node(deps: NodeDeps) -> NodeFn:
    async def sample(state: TPOState) -> Update:
        """Reads ``query`` or ``messages``; writes ``conversation``, ``pending`` (N texts),
        the run's delimiter ``nonce``, ``run_row`` and ``run_stop`` (the input's ``row`` and
        ``stop``, whose channels it empties for the thread's next run), ``started_at`` (wall
        clock, kept in a checkpoint so that a resumed run's ``max_seconds`` counts from its
        first start), resets the cache,
        the trajectory and the iteration's record (``iteration_usage``, ...). ``stop``
        goes to the policy call and cuts each text (``cut_at_max_tokens``: the texts the
        policy ended at ``max_tokens``).

        Empty outputs, outputs that only echo the prompt set's scaffolding and (with
        ``drop_loops``) loops are dropped (``dropped``; see :func:`usable_samples`).
        A penalty the policy cannot apply, and a conversation that cannot fit the policy's
        context window with a reply of ``max_tokens``, are ConfigErrors before any model
        call."""
        started_at = time.time()
        conversation = read_conversation(state)
        stop = read_stop(state)
        config = run_config(deps)
        check_can_review(config)
        check_penalties(deps.policy, config)
        prompts = prompts_for(deps, config)
        messages = sample_messages(prompts, conversation)
        await check_fits_context(deps.policy, messages, config.max_tokens, config.context_window)
        result = await generate(
            deps.policy, messages, config.num_samples, config, step="sample", stop=stop
        )
        cut, at_max = finished(list(result.texts), result.finish_reasons, stop)
        texts, counts = usable_samples(
            prompts, [t for t in cut if t is not None], config.drop_loops
        )
        return {
            **new_iteration_record(),
            "iteration_usage": Overwrite(result.usage.as_dict()),
            "extraction_counts": Overwrite(counts),
            "dropped": len(result.texts) - len(texts),
            "query": conversation[-1]["content"],
            "conversation": conversation,
            "pending": texts,
            "cut_at_max_tokens": Overwrite(at_max),
            "iteration": 0,
            "candidates": Overwrite([]),
            "trajectory": Overwrite([]),
            "chosen": None,
            "rejected": None,
            "textual_loss": "",
            "textual_gradient": "",
            "stop_reason": None,
            "nonce": make_nonce(config.seed, conversation),
            "started_at": started_at,
            "run_row": state.get("row"),
            "row": None,
            "run_stop": stop,
            "stop": None,
        }

    return sample


def article(word: str) -> str:
    """``word`` with its indefinite article: "an assistant", "a system"."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"
