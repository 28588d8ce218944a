"""langgraph-tpo: Test-Time Preference Optimization (Li et al., ICML 2025) as a LangGraph graph."""

from langgraph_tpo.adapters import as_text_runnable, as_tool, tpo_node
from langgraph_tpo.config import TPOConfig
from langgraph_tpo.errors import (
    BackendUnavailableError,
    ConfigError,
    PolicyError,
    RewardError,
    TPOError,
)
from langgraph_tpo.graph import Candidate, TPOState, create_tpo_graph
from langgraph_tpo.reward import BatchReward, as_batch_reward

__all__ = [
    "BackendUnavailableError",
    "BatchReward",
    "Candidate",
    "ConfigError",
    "PolicyError",
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
