"""Prompt sets (``paper``, ``compact`` or your own), versioned with the code."""

from langgraph_tpo.prompts.sets import STEP_VARIABLES, STEPS, PromptSet
from langgraph_tpo.prompts.templates import (
    BUILTIN_SETS,
    COMPACT,
    DEFAULT_PROMPT_SET,
    PAPER,
    PROMPT_VERSION,
    UPDATE_END_TAG,
    UPDATE_START_TAG,
    builtin_prompt_set,
    resolve_prompt_set,
)

__all__ = [
    "BUILTIN_SETS",
    "COMPACT",
    "DEFAULT_PROMPT_SET",
    "PAPER",
    "PROMPT_VERSION",
    "STEPS",
    "STEP_VARIABLES",
    "UPDATE_END_TAG",
    "UPDATE_START_TAG",
    "PromptSet",
    "builtin_prompt_set",
    "resolve_prompt_set",
]
