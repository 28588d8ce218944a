"""When the loop stops, and where ``select`` goes next.

The rules, checked in this order after every ``select``:

- ``bon``: mode is best-of-N (stop after the first selection);
- ``score_threshold``: the best score reached ``score_threshold``;
- ``max_iterations``: D iterations are done;
- ``patience``: the best score has not improved over the last ``patience`` iterations;
- ``budget``: the run's policy tokens reached ``max_total_tokens`` or its wall time
  ``max_seconds`` (checked after each iteration: the one in flight finishes, its responses
  are scored, and the best so far is returned).

(``select`` itself stops with ``no_candidates`` when the first sampling produced no usable text.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from langgraph.graph import END
from langgraph.types import Command

from langgraph_tpo.config import TPOConfig
from langgraph_tpo.graph.state import TPOState

NodeFn = Callable[[TPOState], Awaitable[dict[str, Any]]]

StopReason = Literal[
    "bon", "score_threshold", "max_iterations", "patience", "budget", "no_candidates"
]


@dataclass(frozen=True)
class Spent:
    """What a run has used so far: policy tokens (prompt + completion) and wall seconds."""

    tokens: int
    seconds: float


def has_budget(config: TPOConfig) -> bool:
    return config.max_total_tokens is not None or config.max_seconds is not None


def over_budget(config: TPOConfig, spent: Spent) -> bool:
    """Whether ``spent`` reached either budget of ``config`` (an unset one never does)."""
    tokens, seconds = config.max_total_tokens, config.max_seconds
    return (tokens is not None and spent.tokens >= tokens) or (
        seconds is not None and spent.seconds >= seconds
    )


def stop_reason(
    config: TPOConfig, iteration: int, best_history: list[float], spent: Spent | None = None
) -> StopReason | None:
    """Why to stop after ``iteration``, given the best score after each iteration so far
    and (when the run has a budget) what it has spent."""
    best = best_history[-1]
    if config.mode == "bon":
        return "bon"
    if config.score_threshold is not None and best >= config.score_threshold:
        return "score_threshold"
    if iteration >= config.max_iterations:
        return "max_iterations"
    patience = config.patience
    if patience is not None and iteration >= patience and best <= best_history[-1 - patience]:
        return "patience"
    if spent is not None and over_budget(config, spent):
        return "budget"
    return None


def route_after_select(select: NodeFn) -> Callable[[TPOState], Awaitable[Command]]:
    """``select`` that also says where to go: END once it recorded a stop reason, else on
    to the next iteration.

    A ``Command`` from the node rather than a conditional edge: an edge would read and copy
    the whole state again after every ``select`` just to look at ``stop_reason``.
    """

    async def select_and_route(state: TPOState) -> Command:
        update = await select(state)
        goto = END if update.get("stop_reason") else "textual_loss"
        return Command(update=update, goto=goto)

    return select_and_route


AFTER_SELECT = ("textual_loss", END)  # where ``select`` may go (for the graph's drawing)
