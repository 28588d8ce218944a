"""The graph's state: what each node reads and writes.

The candidate cache and the trajectory only grow during a run, so they use an
appending reducer: nodes return just the new items, never a copy of the cache.
``sample`` resets both (``Overwrite``) so a thread can be reused for a new query.

What an iteration records about itself (node timings, policy usage, how update outputs
were read, the human's review decision) travels in typed channels; ``select`` folds them
into the iteration's :class:`TrajectoryEntry` and resets them for the next iteration.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypedDict, TypeVar

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages

from langgraph_tpo.reward import Conversation

Number = TypeVar("Number", int, float)
ReviewDecision = Literal["accept", "edit", "stop"]


class Candidate(TypedDict):
    """One scored response in the cache."""

    text: str
    score: float
    iteration: int  # 0: from `sample`; k: from the k-th `update`


class Brief(TypedDict):
    """A response as the trajectory quotes it."""

    text: str
    score: float


class UsageRecord(TypedDict, total=False):
    """What the policy was asked for and reported (tokens when the backend reports them)."""

    requests: int
    generations: int
    prompt_tokens: int
    completion_tokens: int


class _EveryEntry(TypedDict):
    """The keys of every trajectory entry (see :class:`TrajectoryEntry`)."""

    iteration: int
    chosen: Brief | None  # critiqued in this iteration (None at iteration 0)
    rejected: Brief | None
    textual_loss: str | None
    textual_gradient: str | None
    new_scores: list[float]  # of the candidates this iteration added
    mean_new_score: float | None
    dropped: int  # outputs without a usable response
    reward_requests: int  # reward calls (0 when every new text was already scored)
    extraction: dict[str, int] | None  # how update outputs were read: rule -> count
    review: ReviewDecision | None  # the human's decision (review_gradient=True)
    best_score: float | None  # best in the cache after this iteration
    best_response: str | None
    timings: dict[str, float]  # seconds per node
    usage: UsageRecord


class TrajectoryEntry(_EveryEntry, total=False):
    """One iteration of a run (0: the initial sampling), as ``select`` logs it."""

    stop_reason: str  # on the last entry only


def add_per_key(
    left: Mapping[str, Number] | None, right: Mapping[str, Number] | None
) -> dict[str, Number]:
    """Reducer of counters: values of the same key are added."""
    total = dict(left or {})
    for key, value in (right or {}).items():
        total[key] = total.get(key, 0) + value
    return total


class TPOInput(TypedDict, total=False):
    """Input: a single ``query``, or a conversation as LangChain ``messages``.

    With ``messages`` (as in ``MessagesState``) TPO optimizes the next assistant reply to
    the whole conversation and appends it to ``messages`` as one ``AIMessage``.

    ``row``: the data row's fields (e.g. ``{"reference": "1/2"}``), read only by a reward
    that names them in ``row_fields`` (a verifier). Each run reads its own: on a reused
    thread, a run without one has none (``sample`` takes it for the run, see ``run_row``).

    ``stop``: stop sequences of the answer. ``sample`` sends them to the policy, and every
    response (sampled or written by ``update``) is cut before the first of them before it is
    scored; the critique calls never get them. Each run reads its own, as ``row``.
    """

    query: str
    messages: Annotated[list[AnyMessage], add_messages]
    row: dict[str, Any]
    stop: list[str]


class TPOOutput(TypedDict, total=False):
    """What a finished run returns."""

    query: str
    messages: Annotated[list[AnyMessage], add_messages]
    response: str
    score: float
    candidates: list[Candidate]
    trajectory: list[TrajectoryEntry]
    stop_reason: str
    iteration: int
    finish_reason: str  # of ``response``: "length" when cut at max_tokens, else "stop"


class TPOState(TPOInput, TPOOutput, total=False):
    """Full working state of a run."""

    conversation: Conversation  # messages the response answers (ends with a user turn)
    pending: list[str]  # fresh texts from `sample`/`update`, not scored yet
    cut_at_max_tokens: Annotated[list[str], operator.add]  # responses the policy ended there
    candidates: Annotated[list[Candidate], operator.add]
    trajectory: Annotated[list[TrajectoryEntry], operator.add]
    chosen: Candidate | None
    rejected: Candidate | None
    textual_loss: str
    textual_gradient: str
    # The iteration in progress, until `select` logs it (see TrajectoryEntry):
    iteration_timings: Annotated[dict[str, float], add_per_key]  # each node adds its own
    iteration_usage: Annotated[UsageRecord, add_per_key]  # each policy call adds its usage
    extraction_counts: Annotated[dict[str, int], add_per_key]  # rule -> outputs read by it
    new_scores: list[float]  # written by reward_score
    dropped: int  # written by sample and update
    reward_requests: int  # written by reward_score
    review_decision: ReviewDecision | None  # written by update, read by select
    nonce: str  # of this run's update delimiters (kept in the checkpoint for resumes)
    started_at: float  # time.time() when `sample` started: the clock of ``max_seconds``
    # The input's `row`, taken by `sample` for this run (the input channel is emptied, so a
    # later run on the same thread without a row does not score with this one): what
    # `reward_score` reads.
    run_row: dict[str, Any] | None
    run_stop: list[str] | None  # the input's `stop`, taken by `sample` for this run, as `run_row`


# What the loop's nodes read (their input schemas): LangGraph reads only these channels
# for them, instead of the whole state, on every step.
class CritiqueView(TypedDict, total=False):
    """What ``textual_loss``, ``textual_gradient`` and ``update`` read."""

    query: str
    conversation: Conversation
    chosen: Candidate | None
    rejected: Candidate | None
    textual_loss: str
    textual_gradient: str
    iteration: int
    nonce: str
    run_stop: list[str] | None


class ScoringView(TypedDict, total=False):
    """What ``reward_score`` reads."""

    conversation: Conversation
    run_row: dict[str, Any] | None
    pending: list[str]
    candidates: Annotated[list[Candidate], operator.add]
    iteration: int
