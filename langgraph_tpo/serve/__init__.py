"""TPO behind the OpenAI Chat Completions API (``tpo serve``, and ``langgraph.json``'s
custom route)."""

from langgraph_tpo.serve.app import create_app
from langgraph_tpo.serve.protocol import PIPELINES, APIError, ChatRequest, parse_request

__all__ = ["PIPELINES", "APIError", "ChatRequest", "create_app", "parse_request"]
