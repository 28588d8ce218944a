"""Temperature and top-p (nucleus) filtering for ``generate`` on CPU, without a full sort.

transformers' ``TopPLogitsWarper`` sorts the whole vocabulary (49,152 tokens for SmolLM2)
for every sequence at every step. The nucleus nearly always lies within the few hundred most
likely tokens, so :class:`TemperatureTopP` takes ``torch.topk`` of those and sorts a full row
only when they do not reach ``top_p``. It keeps the same tokens as the sort (ties aside).

It applies the temperature itself because ``generate`` runs custom processors before its own
temperature warper; pass ``temperature=1.0, top_p=1.0, top_k=0`` to ``generate`` with it.
"""

from __future__ import annotations

from typing import Any

CANDIDATES = 256


class TemperatureTopP:
    """A ``LogitsProcessor``: ``scores / temperature``, then keep the smallest set of most
    likely tokens whose probability mass reaches ``top_p`` (others get ``-inf``)."""

    def __init__(self, temperature: float, top_p: float, candidates: int = CANDIDATES) -> None:
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        self.temperature = temperature
        self.top_p = top_p
        self.candidates = candidates

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        scores = scores / self.temperature if self.temperature != 1.0 else scores
        if self.top_p >= 1.0:
            return scores
        probs = scores.softmax(dim=-1)
        k = min(self.candidates, scores.shape[-1])
        top, order = probs.topk(k, dim=-1)  # descending
        if bool((top.sum(dim=-1) < self.top_p).any()):  # some nucleus is wider: sort fully
            top, order = probs.sort(dim=-1, descending=True)
        # keep a token while the mass strictly above it is still short of top_p
        keep = (top.cumsum(dim=-1) - top) < self.top_p
        keep[:, 0] = True
        mask = torch.zeros_like(scores, dtype=torch.bool).scatter_(-1, order, keep)
        return scores.masked_fill(~mask, float("-inf"))
