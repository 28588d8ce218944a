"""Human review of the textual gradient (``review_gradient=True``).

``update`` calls :func:`review_gradient` before generating; it pauses the run with
LangGraph's ``interrupt``, showing chosen, rejected, the critique and the suggestions.
Resume with ``Command(resume=...)``:

- ``None``, ``True``, ``"accept"`` or ``{"action": "accept"}``: keep the suggestions;
- a string, or ``{"action": "edit", "textual_gradient": "..."}``: use this text instead;
- ``"stop"``, ``False`` or ``{"action": "stop"}``: stop the loop (``stop_reason="human_stop"``).

The pause happens before any model call in ``update``, so resuming repeats no work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from langgraph.types import interrupt

from langgraph_tpo.errors import ConfigError
from langgraph_tpo.graph.state import TPOState
from langgraph_tpo.nodes.common import brief


@dataclass(frozen=True)
class Review:
    action: Literal["accept", "edit", "stop"]
    textual_gradient: str


def review_gradient(state: TPOState) -> Review:
    """Pause for a human decision on the suggestions; return what to do."""
    gradient = state.get("textual_gradient") or ""
    answer = interrupt(
        {
            "event": "review_gradient",
            "iteration": state.get("iteration", 0) + 1,
            "chosen": brief(state.get("chosen")),
            "rejected": brief(state.get("rejected")),
            "textual_loss": state.get("textual_loss"),
            "textual_gradient": gradient,
            "resume_with": "accept | stop | replacement text | "
            '{"action": "edit", "textual_gradient": "..."}',
        }
    )
    return parse_review(answer, gradient)


def parse_review(answer: Any, gradient: str) -> Review:
    if answer in (None, True, "accept", "") or answer == {"action": "accept"}:
        return Review("accept", gradient)
    if answer in (False, "stop") or answer == {"action": "stop"}:
        return Review("stop", gradient)
    if isinstance(answer, str):
        return Review("edit", answer)
    if isinstance(answer, dict) and answer.get("action") == "edit":
        text = answer.get("textual_gradient")
        if isinstance(text, str) and text.strip():
            return Review("edit", text)
    raise ConfigError(
        f"cannot resume the gradient review with {answer!r}: use 'accept', 'stop', a "
        "replacement text, or {'action': 'edit', 'textual_gradient': '...'}"
    )
