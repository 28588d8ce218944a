"""The textual loss, textual gradient and update prompts.

All three start with the same system message, the query and the chosen response,
so a server with prefix caching (vLLM) computes that prefix once per iteration.
The gradient prompt extends the loss conversation (critique as the assistant's
turn), so its whole prefix is shared. The update prompt, which is sent with n=N,
is kept short: query, chosen response and suggestions only.

Text that comes from users or models is neutralised so it cannot close or open the
update delimiters or the section markers below (see :func:`neutralize`).
"""

from __future__ import annotations

import re

PROMPT_VERSION = "1"

UPDATE_START_TAG = "<improved_response>"
UPDATE_END_TAG = "</improved_response>"

SYSTEM = (
    "You help improve an assistant's response to a user. Responses were scored by a "
    "reward model that reflects human preferences; follow the instructions exactly."
)

_LOSS_PAIRWISE = (
    "The CHOSEN response scored higher than the REJECTED one. Compare them step by step: "
    "say what makes the chosen response better, and what weaknesses it still has. "
    "Be concise. Do not write a new response."
)
_LOSS_REVISION = (
    "Evaluate the CHOSEN response step by step: its strengths and its weaknesses. "
    "Be concise. Do not write a new response."
)
_GRADIENT = (
    "Based on your evaluation, list concrete suggestions for improving the CHOSEN "
    "response so that it is preferred even more. Only give suggestions; do not rewrite it."
)
_UPDATE = (
    "Rewrite the CHOSEN response to the user, applying the suggestions above. Write only "
    "the improved response, between {start} and {end}."
)

_MARKER = re.compile(r"(?i)</?\s*improved_response\s*>|^###\s+(?=[A-Z ]+$)", re.MULTILINE)


def neutralize(text: str) -> str:
    """Defuse delimiters and section markers inside untrusted text.

    ``<improved_response>`` becomes ``<improved-response>`` and a line starting with
    ``### SECTION`` loses its hashes, so a query or response cannot fake the prompt's
    structure. Everything else is kept verbatim.
    """

    def _defuse(match: re.Match[str]) -> str:
        token = match.group(0)
        return token.replace("_", "-") if token.startswith("<") else ""

    return _MARKER.sub(_defuse, text)


def _section(title: str, body: str) -> str:
    return f"### {title}\n{neutralize(body).strip()}\n"


def _context(query: str, chosen: str) -> str:
    return _section("USER QUERY", query) + "\n" + _section("CHOSEN RESPONSE", chosen)


def loss_messages(query: str, chosen: str, rejected: str | None) -> list[tuple[str, str]]:
    """The textual loss: a critique of chosen against rejected (or of chosen alone)."""
    if rejected is None:
        body = _context(query, chosen) + "\n" + _LOSS_REVISION
    else:
        body = (
            _context(query, chosen)
            + "\n"
            + _section("REJECTED RESPONSE", rejected)
            + "\n"
            + _LOSS_PAIRWISE
        )
    return [("system", SYSTEM), ("human", body)]


def gradient_messages(
    query: str, chosen: str, rejected: str | None, textual_loss: str
) -> list[tuple[str, str]]:
    """The textual gradient: the loss conversation continued with a request for suggestions."""
    return [
        *loss_messages(query, chosen, rejected),
        ("ai", neutralize(textual_loss).strip()),
        ("human", _GRADIENT),
    ]


def update_messages(query: str, chosen: str, textual_gradient: str) -> list[tuple[str, str]]:
    """The update: N rewrites of chosen that apply the suggestions, between delimiters."""
    body = (
        _context(query, chosen)
        + "\n"
        + _section("SUGGESTIONS", textual_gradient)
        + "\n"
        + _UPDATE.format(start=UPDATE_START_TAG, end=UPDATE_END_TAG)
    )
    return [("system", SYSTEM), ("human", body)]
