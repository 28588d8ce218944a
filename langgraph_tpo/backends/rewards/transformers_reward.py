"""A sequence-classification reward model run in-process with transformers."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Sequence
from typing import Any

from langgraph_tpo.backends.inprocess.chat_template import render_batch_for_reward
from langgraph_tpo.backends.plumbing.extras import require
from langgraph_tpo.backends.plumbing.model_files import (
    check_model_dir,
    check_tokenizer_dir,
    is_local,
)
from langgraph_tpo.errors import BackendUnavailableError, ConfigError, RewardError
from langgraph_tpo.reward import RewardPair, check_scores


class TransformersReward:
    """Scores pairs with an ``AutoModelForSequenceClassification`` reward model (one logit).

    Reads: ``(conversation, response)`` pairs; each is rendered with the tokenizer's chat
    template (:func:`render_batch_for_reward`), tokenized with special tokens, and scored in
    right-padded batches of ``batch_size`` (similar lengths batched together).
    Returns: the raw logit per pair (no sigmoid), in input order, as floats.
    ``device`` is ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"`` (default: ``"cuda"`` when
    a GPU is visible, else ``"cpu"``); ``dtype`` is ``"float32"``, ``"bfloat16"`` or
    ``"float16"`` (default: bfloat16 on a GPU, float32 on CPU). With ``max_length``, longer
    inputs are cut from the left, so the end of the response (where the score is read) is
    kept. The score is read at each row's last real token even when that token is the pad
    token (Llama-3 templates end with ``<|eot_id|>``, which is also their usual padding):
    see :func:`_padding_id`.
    A local ``model_path`` (or ``tokenizer_path``) that does not exist or lacks the model's
    files is a :class:`BackendUnavailableError` at construction, never retried.
    """

    def __init__(
        self,
        model_path: str,
        *,
        tokenizer_path: str | None = None,
        batch_size: int = 8,
        device: str | None = None,
        dtype: str | None = None,
        max_length: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        require("local", "torch", "transformers", what="TransformersReward")
        _check_paths(model_path, tokenizer_path)
        self.model_path = model_path
        self.tokenizer_path = tokenizer_path or model_path
        self.batch_size = batch_size
        self.device = check_device(device) if device else default_device()
        self.dtype = check_dtype(dtype) if dtype else default_dtype(self.device)
        self.max_length = max_length
        self._model: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def _load(self) -> tuple[Any, Any]:
        if self._model is None:
            self._model, self._tokenizer = _load_reward_model(
                self.model_path, self.tokenizer_path, self.device, self.dtype
            )
        return self._model, self._tokenizer

    def score_batch(self, pairs: Sequence[RewardPair]) -> list[float]:
        """One raw reward logit per pair, in order (blocking)."""
        if not pairs:
            return []
        with self._lock:
            model, tokenizer = self._load()
            texts = render_batch_for_reward(tokenizer, pairs)
            scores = self._score_texts(model, tokenizer, texts)
        return check_scores(scores, [response for _, response in pairs])

    async def ascore_batch(self, pairs: Sequence[RewardPair]) -> list[float]:
        """:meth:`score_batch` in a worker thread."""
        return await asyncio.to_thread(self.score_batch, pairs)

    def _score_texts(self, model: Any, tokenizer: Any, texts: list[str]) -> list[float]:
        encoded = [self._encode(tokenizer, text) for text in texts]
        order = sorted(range(len(texts)), key=lambda i: len(encoded[i]))
        scores: list[float] = [0.0] * len(texts)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            values = _forward(model, tokenizer, [encoded[i] for i in chunk], self.device)
            for index, value in zip(chunk, values, strict=True):
                scores[index] = value
        return scores

    def _encode(self, tokenizer: Any, text: str) -> list[int]:
        ids = tokenizer(text, add_special_tokens=True)["input_ids"]
        if self.max_length is not None and len(ids) > self.max_length:
            ids = ids[-self.max_length :]
        return ids


def _check_paths(model_path: str, tokenizer_path: str | None) -> None:
    """Local paths that do not hold the model (or tokenizer) fail now, naming what is missing.

    Hub ids (``owner/name`` with no such local path) are left to ``from_pretrained``.
    """
    if is_local(model_path):
        check_model_dir("reward model", model_path, tokenizer=tokenizer_path is None)
    if tokenizer_path is not None and is_local(tokenizer_path):
        check_tokenizer_dir("reward tokenizer", tokenizer_path)


DTYPES = ("float32", "bfloat16", "float16")
DEVICE_PATTERN = re.compile(r"cpu|mps|(cuda|xpu)(:\d+)?")


def default_device() -> str:
    """``"cuda"`` when torch sees a GPU, else ``"cpu"``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def default_dtype(device: str) -> str:
    """bfloat16 on an accelerator, float32 on CPU (bfloat16 matmuls are slow on most CPUs)."""
    return "float32" if device == "cpu" else "bfloat16"


def check_device(device: str) -> str:
    """``device`` when it names a torch device this backend supports; else :class:`ConfigError`."""
    if not DEVICE_PATTERN.fullmatch(device):
        raise ConfigError(
            f"reward device must be cpu, cuda, cuda:N, xpu[:N] or mps; got {device!r}"
        )
    return device


def check_dtype(dtype: str) -> str:
    """``dtype`` when it is one of :data:`DTYPES`; else :class:`ConfigError`."""
    if dtype not in DTYPES:
        raise ConfigError(f"reward dtype must be one of {', '.join(DTYPES)}; got {dtype!r}")
    return dtype


def _load_reward_model(
    model_path: str, tokenizer_path: str, device: str, dtype: str
) -> tuple[Any, Any]:
    """Model (``dtype``, eval, no grad, on ``device``) and tokenizer with a pad token."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from langgraph_tpo.backends.inprocess.causal_lm import configure_torch_threads

    _check_device_available(device)
    configure_torch_threads()
    try:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
        model = AutoModelForSequenceClassification.from_pretrained(
            model_path, dtype=getattr(torch, dtype)
        )
    except Exception as exc:
        raise BackendUnavailableError(
            f"could not load reward model {model_path!r} (tokenizer {tokenizer_path!r}): "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if model.config.num_labels != 1:
        raise ConfigError(
            f"reward model {model_path!r} has num_labels={model.config.num_labels}; "
            "TransformersReward needs a single-logit (num_labels=1) reward model"
        )
    _align_pad_token(model, tokenizer)
    model.to(device).eval().requires_grad_(False)
    return model, tokenizer


def _check_device_available(device: str) -> None:
    import torch

    kind = device.split(":")[0]
    backend = getattr(torch, kind, None) if kind != "cpu" else None
    if kind != "cpu" and not (backend is not None and backend.is_available()):
        raise ConfigError(f"reward device {device!r} is not available to torch on this machine")


def _align_pad_token(model: Any, tokenizer: Any) -> None:
    """Make tokenizer and model agree on the pad id the model uses to find the last token."""
    config = model.config.get_text_config()
    if config.pad_token_id is not None:
        tokenizer.pad_token_id = config.pad_token_id
        return
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token_id is None:
            raise ConfigError("reward tokenizer has neither a pad token nor an eos token")
        tokenizer.pad_token = tokenizer.eos_token
    config.pad_token_id = tokenizer.pad_token_id
    model.config.pad_token_id = tokenizer.pad_token_id


def _padding_id(preferred: int, batch: list[list[int]]) -> int:
    """A pad id that is no row's last token: ``preferred`` unless some row ends with it.

    transformers' ``*ForSequenceClassification`` reads the score at the rightmost token that
    is not ``config.pad_token_id``. When a chat template ends with the token used as padding
    (eos standing in for a missing pad token), that rule would skip the real last token;
    padding (and telling the model) with an id no row ends with keeps it. Pad positions are
    masked out, so which id fills them does not change the scores.
    """
    last_tokens = {ids[-1] for ids in batch}
    if preferred not in last_tokens:
        return preferred
    return next(i for i in range(len(last_tokens) + 1) if i not in last_tokens)


def _forward(model: Any, tokenizer: Any, batch: list[list[int]], device: str) -> list[float]:
    """Raw logits of one right-padded batch, each read at its row's last real token."""
    import torch

    width = max(len(ids) for ids in batch)
    pad = _padding_id(tokenizer.pad_token_id, batch)
    model.config.get_text_config().pad_token_id = pad
    model.config.pad_token_id = pad
    input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids in batch], device=device)
    attention_mask = torch.tensor(
        [[1] * len(ids) + [0] * (width - len(ids)) for ids in batch], device=device
    )
    with torch.inference_mode():
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
    if logits.ndim != 2 or logits.shape[-1] != 1:
        raise RewardError(
            f"reward model returned logits of shape {tuple(logits.shape)}, not (B, 1)"
        )
    return logits[:, 0].float().tolist()
