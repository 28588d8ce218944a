"""Prompt templates, versioned with the code (``PROMPT_VERSION``)."""

from langgraph_tpo.prompts.templates import (
    PROMPT_VERSION,
    UPDATE_END_TAG,
    UPDATE_START_TAG,
    gradient_messages,
    loss_messages,
    update_messages,
)

__all__ = [
    "PROMPT_VERSION",
    "UPDATE_END_TAG",
    "UPDATE_START_TAG",
    "gradient_messages",
    "loss_messages",
    "update_messages",
]
