"""The built-in prompt sets, ``paper`` (the default) and ``compact``.

``paper`` follows the information flow of the paper's code (yafuly/TPO on its modified
TextGrad), in words of our own:

- ``sample``: a short system prompt before the conversation;
- ``textual_loss``: query, rejected and chosen; the critique compares them;
- ``textual_gradient``: the loss conversation continued, the critique as the assistant's
  turn, then the request for suggestions;
- ``update``: the gradient conversation continued, the suggestions as the assistant's turn,
  then the request for the rewrite between the delimiters. The gradient call's messages
  are an exact prefix of the update call's, so the update sees query, chosen, rejected,
  critique and suggestions, and a prefix-caching server (vLLM) computes only the last turn
  when the N update samples start.

``compact`` is the shorter flow of earlier versions: the update prompt quotes only the
query, chosen and the suggestions, and there is no system prompt in sampling.
"""

from __future__ import annotations

from langgraph_tpo.errors import ConfigError
from langgraph_tpo.prompts.sets import PromptSet

PROMPT_VERSION = "2"

# The tag the built-in delimiters are named after; each run's delimiters add a nonce
# (``<improved_response_1a2b3c4d>``), see PromptSet.update_start.
UPDATE_START_TAG = "<improved_response>"
UPDATE_END_TAG = "</improved_response>"

_PAPER_SAMPLE = "You are a helpful assistant. Answer the user accurately, clearly and usefully."

_PAPER_LOSS_SYSTEM = (
    "You are an evaluator of answers to a user's query. A reward model that reflects human "
    "preferences scored two answers: the chosen one higher than the rejected one. Go "
    "through both step by step: what makes the chosen answer better, where the rejected "
    "one falls short, and which weaknesses the chosen answer still has. Be concise. Do not "
    "answer the query yourself."
)
_PAPER_LOSS_BODY = (
    "## User query\n{query}\n\n## Rejected answer\n{rejected}\n\n## Chosen answer\n{chosen}"
)
_PAPER_REVISION_SYSTEM = (
    "You are an evaluator of an answer to a user's query. Go through the answer step by "
    "step: its strengths and its weaknesses. Be concise. Do not answer the query yourself."
)
_PAPER_REVISION_BODY = "## User query\n{query}\n\n## Chosen answer\n{chosen}"
_PAPER_GRADIENT = (
    "From your evaluation, give specific, actionable suggestions that would make the chosen "
    "answer even better for this user. Only list the suggestions; do not write the answer."
)
_PAPER_UPDATE = (
    "Now write an improved version of the chosen answer that applies your suggestions and "
    "keeps what already works. Write only the new answer to the user, without comments, "
    "and put it between {start} and {end}."
)

# The start of a step that continues the conversation of the step before: that step's
# messages and its reply, so the new prompt extends the previous one exactly.
_AFTER_LOSS = [("placeholder", "{loss_messages}"), ("ai", "{textual_loss}")]
_AFTER_GRADIENT = [("placeholder", "{gradient_messages}"), ("ai", "{textual_gradient}")]

PAPER = PromptSet(
    name="paper",
    sample=[("system", _PAPER_SAMPLE)],
    textual_loss=[("system", _PAPER_LOSS_SYSTEM), ("human", _PAPER_LOSS_BODY)],
    textual_loss_revision=[("system", _PAPER_REVISION_SYSTEM), ("human", _PAPER_REVISION_BODY)],
    textual_gradient=[*_AFTER_LOSS, ("human", _PAPER_GRADIENT)],
    update=[*_AFTER_GRADIENT, ("human", _PAPER_UPDATE)],
)

_COMPACT_SYSTEM = (
    "You help improve an assistant's response to a user. Responses were scored by a "
    "reward model that reflects human preferences; follow the instructions exactly."
)
_COMPACT_CONTEXT = "### USER QUERY\n{query}\n\n### CHOSEN RESPONSE\n{chosen}\n\n"
_COMPACT_LOSS = (
    _COMPACT_CONTEXT + "### REJECTED RESPONSE\n{rejected}\n\n"
    "The CHOSEN response scored higher than the REJECTED one. Compare them step by step: "
    "say what makes the chosen response better, and what weaknesses it still has. "
    "Be concise. Do not write a new response."
)
_COMPACT_REVISION = (
    _COMPACT_CONTEXT + "Evaluate the CHOSEN response step by step: its strengths and its "
    "weaknesses. Be concise. Do not write a new response."
)
_COMPACT_GRADIENT = (
    "Based on your evaluation, list concrete suggestions for improving the CHOSEN "
    "response so that it is preferred even more. Only give suggestions; do not rewrite it."
)
_COMPACT_UPDATE = (
    _COMPACT_CONTEXT + "### SUGGESTIONS\n{textual_gradient}\n\n"
    "Rewrite the CHOSEN response to the user, applying the suggestions above. Write only "
    "the improved response, between {start} and {end}."
)

COMPACT = PromptSet(
    name="compact",
    sample=[],
    textual_loss=[("system", _COMPACT_SYSTEM), ("human", _COMPACT_LOSS)],
    textual_loss_revision=[("system", _COMPACT_SYSTEM), ("human", _COMPACT_REVISION)],
    textual_gradient=[*_AFTER_LOSS, ("human", _COMPACT_GRADIENT)],
    update=[("system", _COMPACT_SYSTEM), ("human", _COMPACT_UPDATE)],
)

BUILTIN_SETS: dict[str, PromptSet] = {"paper": PAPER, "compact": COMPACT}
DEFAULT_PROMPT_SET = "paper"


def builtin_prompt_set(name: str) -> PromptSet:
    """A built-in set by name; ConfigError listing the names otherwise."""
    try:
        return BUILTIN_SETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown prompt set {name!r}; built-in sets: {', '.join(BUILTIN_SETS)}"
        ) from None


def resolve_prompt_set(prompts: str | PromptSet | None) -> PromptSet:
    """``create_tpo_graph(prompts=...)``: a PromptSet, a built-in name, or None (paper)."""
    if prompts is None:
        return BUILTIN_SETS[DEFAULT_PROMPT_SET]
    if isinstance(prompts, PromptSet):
        return prompts
    if isinstance(prompts, str):
        return builtin_prompt_set(prompts)
    raise ConfigError(
        f"prompts must be a PromptSet or a built-in name, got {type(prompts).__name__}"
    )
