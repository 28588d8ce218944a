"""Human review of the textual gradient (``review_gradient=True``).

``update`` calls :func:`review_gradient` before generating; it pauses the run with
LangGraph's ``interrupt``, showing chosen, rejected, the critique, the suggestions and
what to answer (``instructions``). Resume with ``Command(resume=...)``:

- ``"accept"`` (any case, surrounding spaces ignored), ``True`` or ``{"action": "accept"}``:
  keep the suggestions;
- ``"stop"``, ``False`` or ``{"action": "stop"}``: stop the loop (``stop_reason="human_stop"``);
- any other text, or ``{"action": "edit", "textual_gradient": "..."}``: use this text instead.

An answer that is none of these (an empty or whitespace-only reply, an unknown action)
is not guessed at: the review asks again, with ``problem`` saying what was wrong. The
pause happens before any model call in ``update``, so resuming repeats no work. Reviews
need a checkpointer (the graph's own, or a parent graph's when TPO is its subgraph); a run
without one is a :class:`ConfigError` before any model call (:func:`check_can_review`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from langgraph.config import get_config
from langgraph.types import interrupt

from langgraph_tpo.config import TPOConfig
from langgraph_tpo.errors import ConfigError
from langgraph_tpo.graph.state import TPOState
from langgraph_tpo.nodes.common import brief

INSTRUCTIONS = (
    "Resume with 'accept' to keep these suggestions, 'stop' to end the loop with the best "
    "response so far, or your own suggestions as text (also as {'action': 'accept' | 'stop' "
    "| 'edit', 'textual_gradient': '...'})."
)
# Where LangGraph keeps a task's checkpointer (the graph's own, or the one a parent lends
# its subgraph); no public API tells a node whether its run is persisted.
_CHECKPOINTER_KEY = "__pregel_checkpointer"


@dataclass(frozen=True)
class Review:
    action: Literal["accept", "edit", "stop"]
    textual_gradient: str


def check_can_review(config: TPOConfig) -> None:
    """A :class:`ConfigError` when ``review_gradient`` is on but the run has no checkpointer:
    it would pause and never resume. Called when the run starts, before any model call."""
    if not config.review_gradient:
        return
    try:
        configurable = get_config().get("configurable") or {}
    except RuntimeError:  # outside a graph run (a unit test of one node)
        return
    if configurable.get(_CHECKPOINTER_KEY) is None:
        raise ConfigError(
            "review_gradient needs a checkpointer to pause and resume: "
            "create_tpo_graph(..., checkpointer=InMemorySaver()), or add the graph to a "
            "parent graph compiled with one"
        )


def review_gradient(state: TPOState) -> Review:
    """Pause for a human decision on the suggestions; return what to do.

    An answer that cannot be read pauses again, with ``problem`` in the payload.
    """
    gradient = state.get("textual_gradient") or ""
    payload: dict[str, Any] = {
        "event": "review_gradient",
        "iteration": state.get("iteration", 0) + 1,
        "chosen": brief(state.get("chosen")),
        "rejected": brief(state.get("rejected")),
        "textual_loss": state.get("textual_loss"),
        "textual_gradient": gradient,
        "instructions": INSTRUCTIONS,
        "resume_with": "accept | stop | replacement text | "
        '{"action": "edit", "textual_gradient": "..."}',
    }
    while True:  # each interrupt() in a node takes the next resume value
        answer = interrupt(payload)
        try:
            return parse_review(answer, gradient)
        except ConfigError as exc:
            payload = {**payload, "problem": str(exc)}


def _word(value: Any) -> str | None:
    return value.strip().lower() if isinstance(value, str) else None


def parse_review(answer: Any, gradient: str) -> Review:
    """What a resume value asks for; :class:`ConfigError` saying why when it is unreadable."""
    if isinstance(answer, dict):
        return _parse_structured(answer, gradient)
    if answer is True or _word(answer) == "accept":
        return Review("accept", gradient)
    if answer is False or _word(answer) == "stop":
        return Review("stop", gradient)
    if isinstance(answer, str):
        if not answer.strip():
            raise ConfigError(
                "the reply is empty: it is not taken as replacement suggestions; answer "
                "'accept' to keep them, 'stop', or the text to use instead"
            )
        return Review("edit", answer.strip())
    raise ConfigError(f"cannot read the review answer {answer!r}. {INSTRUCTIONS}")


def _parse_structured(answer: dict[str, Any], gradient: str) -> Review:
    action = _word(answer.get("action"))
    if action in ("accept", "stop"):
        return Review(action, gradient)  # type: ignore[arg-type]
    if action == "edit":
        text = answer.get("textual_gradient")
        if isinstance(text, str) and text.strip():
            return Review("edit", text.strip())
        raise ConfigError(
            "{'action': 'edit'} needs a non-empty 'textual_gradient' with the suggestions to use"
        )
    raise ConfigError(f"cannot read the review answer {answer!r}. {INSTRUCTIONS}")
