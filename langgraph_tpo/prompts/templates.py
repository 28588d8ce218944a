"""The built-in prompt sets, ``paper`` (the default) and ``compact``.

``paper`` follows the information flow of the paper's code (yafuly/TPO on its modified
TextGrad), in words of our own:

- ``sample``: a short system prompt before the conversation;
- the three steps of an iteration are one conversation under a neutral system prompt that
  gives no order of its own; each step's role and rules come in its own user turn:
- ``textual_loss`` (an evaluator): query, rejected and chosen; the critique compares them;
- ``textual_gradient`` (a critical reviewer): the loss conversation continued, the
  critique as the assistant's turn, then the request for specific changes aimed at what
  the reward prefers, leaving alone what works;
- ``update`` (the assistant answering the user): the gradient conversation continued, the
  suggestions as the assistant's turn, then the request for the complete improved answer
  between the delimiters, free to ignore wrong suggestions (the reference's optimizer is
  told its feedback may be noisy). The gradient call's messages are an exact prefix of
  the update call's, so the update sees query, chosen, rejected, critique and
  suggestions, and a prefix-caching server (vLLM) computes only the last turn when the
  N update samples start.

``compact`` is the shorter flow of earlier versions: the update prompt quotes only the
query, chosen and the suggestions, and there is no system prompt in sampling.
"""

from __future__ import annotations

from langgraph_tpo.errors import ConfigError
from langgraph_tpo.prompts.sets import PromptSet

PROMPT_VERSION = "3"

# The tag the built-in delimiters are named after; each run's delimiters add a nonce
# (``<improved_response_1a2b3c4d>``), see PromptSet.update_start.
UPDATE_START_TAG = "<improved_response>"
UPDATE_END_TAG = "</improved_response>"

_PAPER_SAMPLE = "You are a helpful assistant. Answer the user accurately, clearly and usefully."

# The three steps of an iteration form one conversation (each call extends the one before,
# so a prefix-caching server computes only the new turn). Its system prompt is neutral and
# holds for every step; each step's role and rules come in that step's own user turn
# ("First, act as an evaluator ... In this step, write only the evaluation"), so no
# earlier order contradicts a later step. No step headers: a small policy copies them.
_PAPER_CRITIQUE_SYSTEM = (
    "You help improve an assistant's answer to a user's query, in three steps: evaluate "
    "it, suggest changes, then write the improved answer. Each message says which step "
    "comes next and what it asks for."
)
_PAPER_LOSS = (
    "First, act as an evaluator. A reward model that reflects human preferences scored two "
    "answers to the query below and preferred the chosen answer to the rejected one. "
    "Compare them step by step: what makes the chosen answer better, where the rejected "
    "answer falls short, and which weaknesses the chosen answer still has. In this step, "
    "write only the evaluation, not a new answer.\n\n"
    "## User query\n{query}\n\n## Rejected answer\n{rejected}\n\n## Chosen answer\n{chosen}"
)
_PAPER_REVISION = (
    "First, act as an evaluator. A reward model that reflects human preferences scored the "
    "answer below to the query. Go through it step by step: its strengths, and the "
    "weaknesses that keep it from a higher score. In this step, write only the "
    "evaluation, not a new answer.\n\n"
    "## User query\n{query}\n\n## Chosen answer\n{chosen}"
)
_PAPER_GRADIENT = (
    "Next, act as a critical reviewer. From your evaluation, list specific changes that would "
    "make the chosen answer score higher with the reward model for this query. Be "
    "critical and creative: name the part to change and how. Say nothing about what "
    "already works; it stays as it is. In this step, write only the list of changes."
)
_PAPER_UPDATE = (
    "Finally, act as the assistant who answers the user. Write the complete improved "
    "answer to the user's query: apply the suggested changes that are right, ignore any "
    "that are wrong or would make the answer worse, and keep what already works. Speak to "
    "the user directly; do not mention the evaluation, the suggestions, or the chosen and "
    "rejected answers. Reply in exactly this format, with nothing before or after it:\n"
    "{start}\n(the improved answer)\n{end}"
)

# The start of a step that continues the conversation of the step before: that step's
# messages and its reply, so the new prompt extends the previous one exactly.
_AFTER_LOSS = [("placeholder", "{loss_messages}"), ("ai", "{textual_loss}")]
_AFTER_GRADIENT = [("placeholder", "{gradient_messages}"), ("ai", "{textual_gradient}")]

PAPER = PromptSet(
    name="paper",
    sample=[("system", _PAPER_SAMPLE)],
    textual_loss=[("system", _PAPER_CRITIQUE_SYSTEM), ("human", _PAPER_LOSS)],
    textual_loss_revision=[("system", _PAPER_CRITIQUE_SYSTEM), ("human", _PAPER_REVISION)],
    textual_gradient=[*_AFTER_LOSS, ("human", _PAPER_GRADIENT)],
    update=[*_AFTER_GRADIENT, ("human", _PAPER_UPDATE)],
)

# compact: one system prompt that gives no order of its own; the update is a fresh call
# that quotes the query, the chosen response and the suggestions only.
_COMPACT_SYSTEM = (
    "You help improve an assistant's response to a user. Responses were scored by a "
    "reward model that reflects human preferences. Each message says what to write."
)
_COMPACT_CONTEXT = "### USER QUERY\n{query}\n\n### CHOSEN RESPONSE\n{chosen}\n\n"
_COMPACT_LOSS = (
    _COMPACT_CONTEXT + "### REJECTED RESPONSE\n{rejected}\n\n"
    "The CHOSEN response scored higher than the REJECTED one. Compare them step by step: "
    "say what makes the chosen response better, and what weaknesses it still has. "
    "Here, write only the comparison, not a new response."
)
_COMPACT_REVISION = (
    _COMPACT_CONTEXT + "Evaluate the CHOSEN response step by step: its strengths and its "
    "weaknesses. Here, write only the evaluation, not a new response."
)
_COMPACT_GRADIENT = (
    "Based on your evaluation, list specific changes that would make the CHOSEN response "
    "preferred even more: be critical, name what to change and how, and leave out what "
    "already works. Here, write only the list of changes."
)
_COMPACT_UPDATE = (
    _COMPACT_CONTEXT + "### SUGGESTIONS\n{textual_gradient}\n\n"
    "Write the complete improved response to the user's query: apply the suggestions that "
    "are right, ignore any that are wrong, keep what works, and do not mention the "
    "suggestions or the chosen response. Reply in exactly this format, with nothing "
    "before or after it:\n{start}\n(the improved response)\n{end}"
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
