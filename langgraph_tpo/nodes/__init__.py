"""One module per node. Each ``make_<node>_node(deps)`` returns the async node function."""

from langgraph_tpo.nodes.reward_score import make_reward_score_node
from langgraph_tpo.nodes.sample import make_sample_node
from langgraph_tpo.nodes.select import make_select_node
from langgraph_tpo.nodes.textual_gradient import make_textual_gradient_node
from langgraph_tpo.nodes.textual_loss import make_textual_loss_node
from langgraph_tpo.nodes.update import make_update_node

__all__ = [
    "make_reward_score_node",
    "make_sample_node",
    "make_select_node",
    "make_textual_gradient_node",
    "make_textual_loss_node",
    "make_update_node",
]
