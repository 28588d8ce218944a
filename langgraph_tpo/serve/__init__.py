"""TPO behind the OpenAI Chat Completions API (``tpo serve``, and ``langgraph.json``'s
custom route)."""

from langgraph_tpo.serve.app import create_app
from langgraph_tpo.serve.protocol import (
    PIPELINES,
    APIError,
    ChatCompletionRequest,
    parse_request,
)
from langgraph_tpo.serve.serving import RunSlots, TPOServing

__all__ = [
    "PIPELINES",
    "APIError",
    "ChatCompletionRequest",
    "RunSlots",
    "TPOServing",
    "create_app",
    "parse_request",
]
