"""When the loop stops, and where ``select`` goes next.

The rules, checked in this order after every ``select``:

- ``bon``: mode is best-of-N (stop after the first selection);
- ``score_threshold``: the best score reached ``score_threshold``;
- ``max_iterations``: D iterations are done;
- ``patience``: the best score has not improved over the last ``patience`` iterations.

(``select`` itself stops with ``no_candidates`` when the first sampling produced no usable text.)
"""

from __future__ import annotations

from typing import Literal

from langgraph.graph import END

from langgraph_tpo.config import TPOConfig
from langgraph_tpo.graph.state import TPOState

StopReason = Literal["bon", "score_threshold", "max_iterations", "patience", "no_candidates"]


def stop_reason(config: TPOConfig, iteration: int, best_history: list[float]) -> StopReason | None:
    """Why to stop after ``iteration``, given the best score after each iteration so far."""
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
    return None


async def route_after_select(state: TPOState) -> Literal["textual_loss", "__end__"]:
    """END once ``select`` recorded a stop reason, else on to the next iteration."""
    return END if state.get("stop_reason") else "textual_loss"
