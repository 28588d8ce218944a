"""langgraph-tpo: Test-Time Preference Optimization (Li et al., ICML 2025) as a LangGraph graph.

The public names are imported on first use (PEP 562), so ``import langgraph_tpo.cli`` (what
``tpo --help`` runs) does not import LangGraph and LangChain.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from langgraph_tpo.errors import (
    BackendUnavailableError,
    ConfigError,
    PolicyError,
    RewardError,
    TPOError,
)

if TYPE_CHECKING:
    from langgraph_tpo.adapters import as_text_runnable, as_tool, tpo_node
    from langgraph_tpo.config import TPOConfig
    from langgraph_tpo.graph import Candidate, TPOState, create_tpo_graph
    from langgraph_tpo.prompts import PromptSet
    from langgraph_tpo.reward import BatchReward, as_batch_reward

_LAZY = {
    "as_text_runnable": "langgraph_tpo.adapters",
    "as_tool": "langgraph_tpo.adapters",
    "tpo_node": "langgraph_tpo.adapters",
    "TPOConfig": "langgraph_tpo.config",
    "Candidate": "langgraph_tpo.graph",
    "TPOState": "langgraph_tpo.graph",
    "create_tpo_graph": "langgraph_tpo.graph",
    "PromptSet": "langgraph_tpo.prompts",
    "BatchReward": "langgraph_tpo.reward",
    "as_batch_reward": "langgraph_tpo.reward",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'langgraph_tpo' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "BackendUnavailableError",
    "BatchReward",
    "Candidate",
    "ConfigError",
    "PolicyError",
    "PromptSet",
    "RewardError",
    "TPOConfig",
    "TPOError",
    "TPOState",
    "as_batch_reward",
    "as_text_runnable",
    "as_tool",
    "tpo_node",
    "create_tpo_graph",
]
__version__ = "0.1.0"
