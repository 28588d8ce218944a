"""``reward_score``: score every unscored candidate and add it to the cache."""

from __future__ import annotations

from langgraph_tpo.errors import RewardError, TPOError, is_transient, redact
from langgraph_tpo.graph.state import Candidate, TPOState
from langgraph_tpo.nodes.common import NodeDeps, NodeFn, Update
from langgraph_tpo.reward import check_scores, score_with_row


def make_reward_score_node(deps: NodeDeps) -> NodeFn:
    async def reward_score(state: TPOState) -> Update:
        """Reads ``pending``, ``conversation``, ``candidates`` (and ``run_row`` for a reward
        that reads data-row fields); appends scored ``candidates``, writes their
        ``new_scores`` and ``reward_requests``.

        A text already in the cache reuses its score instead of being scored again.
        """
        pending = state.get("pending") or []
        wanted = set(pending)
        cache = state.get("candidates") or []
        known = {c["text"]: c["score"] for c in cache if c["text"] in wanted}
        fresh = list(dict.fromkeys(t for t in pending if t not in known))
        if fresh:
            known.update(zip(fresh, await _score(deps, state, fresh), strict=True))
        iteration = state.get("iteration", 0)
        new = [Candidate(text=t, score=known[t], iteration=iteration) for t in pending]
        return {
            "candidates": new,
            "pending": [],
            "new_scores": [c["score"] for c in new],
            "reward_requests": int(bool(fresh)),
        }

    return reward_score


async def _score(deps: NodeDeps, state: TPOState, texts: list[str]) -> list[float]:
    pairs = [(state["conversation"], t) for t in texts]
    try:
        scores = await score_with_row(deps.reward, pairs, state.get("run_row"))
    except TPOError as exc:
        exc.transient = exc.transient or is_transient(exc)
        raise
    except Exception as exc:
        error = RewardError(
            redact(
                f"reward {type(deps.reward).__name__} failed on {len(texts)} candidates: "
                f"{type(exc).__name__}: {exc}"
            )
        )
        error.transient = is_transient(exc)
        raise error from exc
    return check_scores(list(scores), texts)
