"""The graph: state, builder, routing."""

from langgraph_tpo.graph.builder import NODE_NAMES, create_tpo_graph
from langgraph_tpo.graph.state import Candidate, TPOInput, TPOOutput, TPOState

__all__ = ["NODE_NAMES", "Candidate", "TPOInput", "TPOOutput", "TPOState", "create_tpo_graph"]
