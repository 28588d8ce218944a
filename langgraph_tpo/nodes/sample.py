"""``sample``: draw N responses to the query (the initial population)."""

from __future__ import annotations

from typing import Any

from langgraph.types import Overwrite

from langgraph_tpo.errors import ConfigError
from langgraph_tpo.graph.state import TPOState
from langgraph_tpo.nodes.common import NodeDeps, NodeFn, Update, run_config
from langgraph_tpo.policy import generate
from langgraph_tpo.reward import Conversation


def read_conversation(state: TPOState) -> Conversation:
    """The conversation to answer, from the ``query`` input; rejects unusable input."""
    query: Any = state.get("query")
    if query is None:
        raise ConfigError("input needs a 'query' (a non-empty string)")
    if not isinstance(query, str):
        raise ConfigError(f"query must be a string, got {type(query).__name__}")
    if not query.strip():
        raise ConfigError("query is empty or whitespace only")
    return [{"role": "user", "content": query}]


def make_sample_node(deps: NodeDeps) -> NodeFn:
    async def sample(state: TPOState) -> Update:
        """Reads ``query``; writes ``pending`` (N texts), resets the cache and trajectory."""
        conversation = read_conversation(state)
        config = run_config(deps)
        result = await generate(deps.policy, conversation, config.num_samples, config)
        texts = [t for t in result.texts if t.strip()]
        return {
            "conversation": conversation,
            "pending": texts,
            "iteration": 0,
            "candidates": Overwrite([]),
            "trajectory": Overwrite([]),
            "chosen": None,
            "rejected": None,
            "textual_loss": "",
            "textual_gradient": "",
            "stop_reason": None,
            "step": {"dropped": len(result.texts) - len(texts), "usage": result.usage.as_dict()},
        }

    return sample
