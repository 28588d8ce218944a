"""Backends that talk to a running vLLM server over HTTP.

* :func:`vllm_chat_model` is the policy: a LangChain ``ChatOpenAI`` pointed at vLLM's
  OpenAI-compatible ``/v1`` API (``n``, ``seed`` and ``logprobs`` pass straight through).
* :class:`VLLMServerReward` is the reward: it renders each (conversation, response) pair with
  the reward model's chat template and scores the whole batch with one ``POST /classify``
  (a vLLM server started with ``--runner pooling`` on a sequence-classification model).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import openai
from langchain_openai import ChatOpenAI

from langgraph_tpo.backends.chat_template import render_batch_for_reward
from langgraph_tpo.errors import BackendUnavailableError, ConfigError, RewardError
from langgraph_tpo.reward import RewardPair

API_KEY_ENVS = ("TPO_API_KEY", "OPENAI_API_KEY")
BODY_EXCERPT = 300
# A server that is down refuses at once, but an unreachable host (packets dropped) would
# hang the TCP connect for the whole request timeout: connecting gets its own short limit.
CONNECT_TIMEOUT_S = 10.0


def http_timeout(timeout: float, connect: float = CONNECT_TIMEOUT_S) -> httpx.Timeout:
    """``timeout`` seconds per request, with connecting limited to ``connect`` seconds."""
    return httpx.Timeout(timeout, connect=min(connect, timeout))


def openai_timeout(timeout: float, connect: float = CONNECT_TIMEOUT_S) -> Any:
    """:func:`http_timeout` as the OpenAI SDK's own ``Timeout`` class (httpx or httpx2)."""
    return openai.Timeout(timeout, connect=min(connect, timeout))


def transient_status(status: int) -> bool:
    """HTTP statuses worth retrying: 408, 429 and 5xx (overloaded, restarting, gateway)."""
    return status in (408, 429) or status >= 500


class RewardServerUnavailableError(BackendUnavailableError, RewardError):
    """The reward server cannot be reached: a :class:`RewardError` (what the graph's reward
    failures are) and a :class:`BackendUnavailableError`; always transient."""

    transient = True


def resolve_api_key(api_key: str | None = None) -> str:
    """``api_key``, else ``$TPO_API_KEY``, else ``$OPENAI_API_KEY``, else ``"EMPTY"``."""
    if api_key:
        return api_key
    for name in API_KEY_ENVS:
        value = os.environ.get(name)
        if value:
            return value
    return "EMPTY"


def server_root_url(base_url: str) -> str:
    """Validate an http(s) URL and return it without a trailing ``/`` or ``/v1``.

    Raises :class:`ConfigError` (a ``ValueError``) naming the URL when it is not http(s).
    """
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"vLLM server URL must be an http:// or https:// URL with a host; got {base_url!r}"
        )
    root = base_url.strip().rstrip("/")
    return root[: -len("/v1")] if root.endswith("/v1") else root


def openai_api_url(base_url: str) -> str:
    """The OpenAI-compatible API root of a vLLM server: its URL ending in ``/v1``."""
    return server_root_url(base_url) + "/v1"


def vllm_chat_model(
    base_url: str,
    model: str,
    *,
    api_key: str | None = None,
    timeout: float = 600,
    max_retries: int = 0,
    **kwargs: Any,
) -> ChatOpenAI:
    """A ``ChatOpenAI`` for a vLLM (or any OpenAI-compatible) server.

    ``base_url`` may be the server root or its ``/v1`` root; ``model`` is the served model
    name. ``timeout`` is per request (connecting: at most ``CONNECT_TIMEOUT_S``).
    ``max_retries`` is the OpenAI client's own retries, 0 by default: in a TPO graph the
    node retry policy (``create_tpo_graph(retry=...)``, ``tpo --retries``) is the one
    retry budget. Extra keyword arguments go to ``ChatOpenAI`` (e.g. ``temperature``).
    """
    return ChatOpenAI(
        model=model,
        base_url=openai_api_url(base_url),
        api_key=resolve_api_key(api_key),
        timeout=openai_timeout(timeout),
        max_retries=max_retries,
        **kwargs,
    )


def _default_tokenizer_path(model: str, tokenizer_path: str | Path | None) -> Path:
    """The local tokenizer directory: ``tokenizer_path``, or ``model`` when it is a local dir."""
    candidate = Path(tokenizer_path) if tokenizer_path is not None else Path(model)
    if candidate.is_dir():
        return candidate
    if tokenizer_path is not None:
        raise ConfigError(f"reward tokenizer_path {str(tokenizer_path)!r} is not a directory")
    raise ConfigError(
        f"VLLMServerReward needs the reward model's tokenizer to render chat templates: pass "
        f"tokenizer_path= (a local directory); served model {model!r} is not a local directory "
        "and nothing is downloaded"
    )


class VLLMServerReward:
    """Scores (conversation, response) pairs with a vLLM pooling server's ``/classify``.

    All pairs of one :meth:`ascore_batch` call go in one request; the raw classifier logit
    (``use_activation: false``) of each is its score. ``requests_sent`` counts requests made.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        tokenizer_path: str | Path | None = None,
        api_key: str | None = None,
        timeout: float = 120.0,
    ) -> None:
        self.base_url = server_root_url(base_url)
        self.model = model
        self.tokenizer_path = _default_tokenizer_path(model, tokenizer_path)
        self.api_key = resolve_api_key(api_key)
        self.timeout = timeout
        self.requests_sent = 0
        self._tokenizer: Any = None
        self._tokenizer_lock = threading.Lock()

    @property
    def classify_url(self) -> str:
        """The ``/classify`` endpoint this reward posts to."""
        return self.base_url + "/classify"

    def load_tokenizer(self) -> Any:
        """The reward model's tokenizer, loaded from its local directory on first use."""
        with self._tokenizer_lock:
            if self._tokenizer is None:
                from transformers import AutoTokenizer

                self._tokenizer = AutoTokenizer.from_pretrained(
                    self.tokenizer_path, local_files_only=True
                )
        return self._tokenizer

    async def tokenizer(self) -> Any:
        """:meth:`load_tokenizer`, run in a worker thread the first time."""
        if self._tokenizer is None:
            return await asyncio.to_thread(self.load_tokenizer)
        return self._tokenizer

    async def render(self, pairs: Sequence[RewardPair]) -> list[str]:
        """The texts sent to the server: each pair through the reward model's chat template."""
        return render_batch_for_reward(await self.tokenizer(), pairs)

    async def ascore_batch(self, pairs: Sequence[RewardPair]) -> list[float]:
        """One raw reward logit per pair, in order, from a single ``/classify`` request."""
        if not pairs:
            return []
        texts = await self.render(pairs)
        payload = {"model": self.model, "input": texts, "use_activation": False}
        body = await self._post(payload)
        return self._parse_scores(body, len(texts))

    async def _post(self, payload: dict[str, Any]) -> Any:
        headers = {"Authorization": f"Bearer {self.api_key}"}
        self.requests_sent += 1
        try:
            async with httpx.AsyncClient(timeout=http_timeout(self.timeout)) as client:
                response = await client.post(self.classify_url, json=payload, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise RewardServerUnavailableError(
                f"reward server at {self.classify_url} is unreachable ({exc.__class__.__name__}: "
                f"{exc}); is a vLLM server with --runner pooling running there?"
            ) from exc
        except httpx.TimeoutException as exc:
            raise RewardError(
                f"reward server {self.classify_url} did not answer within {self.timeout:g}s "
                f"({exc.__class__.__name__})"
            ) from exc
        except httpx.HTTPError as exc:
            raise RewardError(
                f"reward request to {self.classify_url} failed: {exc.__class__.__name__}: {exc}"
            ) from exc
        if response.status_code >= 400:
            error = RewardError(
                f"reward server {self.classify_url} answered HTTP {response.status_code}: "
                f"{self._redact(response.text[:BODY_EXCERPT])}"
            )
            error.transient = transient_status(response.status_code)
            raise error
        try:
            return response.json()
        except ValueError as exc:
            raise RewardError(
                f"reward server {self.classify_url} sent non-JSON: {response.text[:BODY_EXCERPT]}"
            ) from exc

    def _parse_scores(self, body: Any, expected: int) -> list[float]:
        """``data[i].probs[0]`` of a vLLM ``/classify`` response, ordered by ``index``."""
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise RewardError(
                f"reward server {self.classify_url} response has no data list: "
                f"{str(body)[:BODY_EXCERPT]}"
            )
        if len(data) != expected:
            raise RewardError(
                f"reward server {self.classify_url} returned {len(data)} results "
                f"for {expected} inputs"
            )
        try:
            ordered = sorted(data, key=lambda item: int(item.get("index", 0)))
        except (AttributeError, TypeError, ValueError) as exc:
            raise RewardError(
                f"reward server {self.classify_url} results lack an integer index: "
                f"{str(data)[:BODY_EXCERPT]}"
            ) from exc
        return [self._score_of(position, item) for position, item in enumerate(ordered)]

    def _score_of(self, position: int, item: Any) -> float:
        """``probs[0]`` of one result as a float (NaN/inf are checked by the graph)."""
        try:
            return float(item["probs"][0])
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise RewardError(
                f"reward server {self.classify_url} result for candidate {position} lacks a "
                f"numeric probs[0]: {str(item)[:BODY_EXCERPT]}"
            ) from exc

    def _redact(self, text: str) -> str:
        """``text`` without the API key (a server may echo a rejected key back)."""
        if self.api_key and self.api_key != "EMPTY":
            return text.replace(self.api_key, "***")
        return text
