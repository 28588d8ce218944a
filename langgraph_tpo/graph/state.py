"""The graph's state: what each node reads and writes.

The candidate cache and the trajectory only grow during a run, so they use an
appending reducer: nodes return just the new items, never a copy of the cache.
``sample`` resets both (``Overwrite``) so a thread can be reused for a new query.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages

from langgraph_tpo.reward import Conversation


class Candidate(TypedDict):
    """One scored response in the cache."""

    text: str
    score: float
    iteration: int  # 0: from `sample`; k: from the k-th `update`


class TPOInput(TypedDict, total=False):
    """Input: a single ``query``, or a conversation as LangChain ``messages``.

    With ``messages`` (as in ``MessagesState``) TPO optimizes the next assistant reply to
    the whole conversation and appends it to ``messages`` as one ``AIMessage``.
    """

    query: str
    messages: Annotated[list[AnyMessage], add_messages]


class TPOOutput(TypedDict, total=False):
    """What a finished run returns."""

    query: str
    messages: Annotated[list[AnyMessage], add_messages]
    response: str
    score: float
    candidates: list[Candidate]
    trajectory: list[dict[str, Any]]
    stop_reason: str
    iteration: int


class TPOState(TPOInput, TPOOutput, total=False):
    """Full working state of a run."""

    conversation: Conversation  # messages the response answers (ends with a user turn)
    pending: list[str]  # fresh texts from `sample`/`update`, not scored yet
    candidates: Annotated[list[Candidate], operator.add]
    trajectory: Annotated[list[dict[str, Any]], operator.add]
    chosen: Candidate | None
    rejected: Candidate | None
    textual_loss: str
    textual_gradient: str
    step: dict[str, Any]  # scratch record of the iteration in progress
    nonce: str  # of this run's update delimiters (kept in the checkpoint for resumes)
