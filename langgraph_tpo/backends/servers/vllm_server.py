"""Backends that talk to a running vLLM server over HTTP.

* :func:`vllm_chat_model` is the policy: a LangChain ``ChatOpenAI`` pointed at vLLM's
  OpenAI-compatible ``/v1`` API (``n``, ``seed`` and ``logprobs`` pass straight through;
  of the penalties a TPO config sets, ``repetition_penalty`` goes in the request body's
  extra fields, see :func:`~langgraph_tpo.policy.openai_request`).
* :class:`VLLMServerReward` is the reward: ``POST /classify`` on a vLLM server started with
  ``--runner pooling`` on a sequence-classification model. With a local tokenizer it renders
  each (conversation, response) pair with the reward model's chat template and scores the
  whole batch in one request; without one it sends each pair as chat ``messages`` (the
  server applies the template), the pairs of a batch concurrently.
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

from langgraph_tpo.backends.inprocess.chat_template import render_batch_for_reward
from langgraph_tpo.backends.plumbing.balancer import Balancer, split_urls
from langgraph_tpo.backends.servers.multi_server import BalancedChatModel
from langgraph_tpo.errors import (
    NO_KEY,
    SECRET_ENV_VARS,
    BackendUnavailableError,
    ConfigError,
    RewardError,
    redact,
    transient_status,
)
from langgraph_tpo.reward import RewardPair

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


class RewardServerUnavailableError(BackendUnavailableError, RewardError):
    """The reward server cannot be reached: a :class:`RewardError` (what the graph's reward
    failures are) and a :class:`BackendUnavailableError`; always transient."""

    transient = True


def resolve_api_key(api_key: str | None = None) -> str:
    """``api_key``, else ``$TPO_API_KEY``, else ``$OPENAI_API_KEY``, else ``"EMPTY"``."""
    if api_key:
        return api_key
    for name in SECRET_ENV_VARS:
        value = os.environ.get(name)
        if value:
            return value
    return NO_KEY


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


_served_windows: dict[tuple[str, str], int | None] = {}


async def served_max_model_len(api_url: str, model: str, api_key: str | None) -> int | None:
    """``max_model_len`` of ``model`` as the server's ``/v1/models`` lists it (cached per
    server and model); None when the server does not say or cannot be asked (the call
    that follows then reports the server's own error)."""
    key = (api_url, model)
    if key not in _served_windows:
        _served_windows[key] = await _ask_max_model_len(api_url, model, api_key)
    return _served_windows[key]


async def _ask_max_model_len(api_url: str, model: str, api_key: str | None) -> int | None:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        async with httpx.AsyncClient(timeout=http_timeout(10.0)) as client:
            response = await client.get(f"{api_url.rstrip('/')}/models", headers=headers)
            response.raise_for_status()
            listed = response.json().get("data") or []
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    lengths = [m.get("max_model_len") for m in listed if isinstance(m, dict)]
    named = [m.get("max_model_len") for m in listed if isinstance(m, dict) and m.get("id") == model]
    window = (named or lengths or [None])[0]
    return int(window) if isinstance(window, int) and window > 0 else None


class VLLMChatOpenAI(ChatOpenAI):
    """``ChatOpenAI`` for a vLLM server that also says its context window."""

    async def acontext_window(self) -> int | None:
        """The served model's ``max_model_len`` from ``/v1/models``."""
        key = self.openai_api_key.get_secret_value() if self.openai_api_key else None
        return await served_max_model_len(str(self.openai_api_base), self.model_name, key)


def vllm_chat_model(
    base_url: str | Sequence[str],
    model: str,
    *,
    api_key: str | None = None,
    timeout: float = 600,
    max_retries: int = 0,
    **kwargs: Any,
) -> ChatOpenAI | BalancedChatModel:
    """A ``ChatOpenAI`` for a vLLM (or any OpenAI-compatible) server.

    ``base_url`` may be the server root or its ``/v1`` root; ``model`` is the served model
    name. ``timeout`` is per request (connecting: at most ``CONNECT_TIMEOUT_S``).
    ``max_retries`` is the OpenAI client's own retries, 0 by default: in a TPO graph the
    node retry policy (``create_tpo_graph(retry=...)``, ``tpo --retries``) is the one
    retry budget. Extra keyword arguments go to ``ChatOpenAI`` (e.g. ``temperature``).

    Several servers of the same model (a list, or URLs separated by commas) give a
    :class:`~langgraph_tpo.backends.servers.multi_server.BalancedChatModel` over one ``ChatOpenAI``
    per server.
    """
    urls = split_urls(base_url)
    if not urls:
        raise ConfigError(f"vllm_chat_model needs a server URL; got {base_url!r}")
    clients = [
        VLLMChatOpenAI(
            model=model,
            base_url=openai_api_url(url),
            api_key=resolve_api_key(api_key),
            timeout=openai_timeout(timeout),
            max_retries=max_retries,
            **kwargs,
        )
        for url in urls
    ]
    return clients[0] if len(clients) == 1 else BalancedChatModel(clients=clients)


def _local_tokenizer_path(model: str, tokenizer_path: str | Path | None) -> Path | None:
    """The local tokenizer directory: ``tokenizer_path``, or ``model`` when it is a local dir;
    None when there is neither (the server renders the chat template)."""
    if tokenizer_path is not None:
        if not Path(tokenizer_path).is_dir():
            raise ConfigError(f"reward tokenizer_path {str(tokenizer_path)!r} is not a directory")
        return Path(tokenizer_path)
    return Path(model) if Path(model).is_dir() else None


class VLLMServerReward:
    """Scores (conversation, response) pairs with a vLLM pooling server's ``/classify``.

    The raw classifier logit (``use_activation: false``) of each pair is its score. Two ways
    to send a batch of pairs:

    * with a local tokenizer (``tokenizer_path``, or ``model`` naming a local directory):
      each pair is rendered here with the reward model's chat template and the whole batch
      goes in **one** request (``input``: a list of texts);
    * without one: each pair is **one** request with chat ``messages`` (the conversation plus
      the assistant response), rendered by the server with the model's own template; the
      requests of a batch run concurrently over one connection pool of at most
      ``max_connections`` connections.

    ``base_url`` may name several servers of the same model (a list, or URLs separated by
    commas): each request goes to the one with the fewest requests in flight, and a server
    that fails (no connection, HTTP 5xx) is set aside for a back-off while its requests go to
    the others (:class:`~langgraph_tpo.backends.plumbing.balancer.Balancer`; counts in
    ``balancer.stats()``). ``requests_sent`` counts requests made, resent ones included.
    """

    def __init__(
        self,
        base_url: str | Sequence[str],
        model: str,
        *,
        tokenizer_path: str | Path | None = None,
        api_key: str | None = None,
        timeout: float = 120.0,
        max_connections: int = 16,
    ) -> None:
        if max_connections < 1:
            raise ConfigError(f"max_connections must be >= 1, got {max_connections}")
        self.base_urls = [server_root_url(url) for url in split_urls(base_url)]
        if not self.base_urls:
            raise ConfigError(f"VLLMServerReward needs a server URL; got {base_url!r}")
        self.base_url = self.base_urls[0]
        self.balancer = Balancer(self.base_urls, "reward")
        self.model = model
        self.tokenizer_path = _local_tokenizer_path(model, tokenizer_path)
        self.api_key = resolve_api_key(api_key)
        self.timeout = timeout
        self.max_connections = max_connections
        self.requests_sent = 0
        self._tokenizer: Any = None
        self._tokenizer_lock = threading.Lock()

    @property
    def classify_url(self) -> str:
        """The ``/classify`` endpoint of the (first) server this reward posts to."""
        return self.base_url + "/classify"

    @property
    def renders_locally(self) -> bool:
        """True when a local tokenizer renders the chat template (one request per batch)."""
        return self.tokenizer_path is not None

    def load_tokenizer(self) -> Any:
        """The reward model's tokenizer, loaded from its local directory on first use."""
        if self.tokenizer_path is None:
            raise ConfigError("this VLLMServerReward has no local tokenizer (tokenizer_path)")
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
        """One raw reward logit per pair, in order: one ``/classify`` request for the batch
        with a local tokenizer, else one ``messages`` request per pair, concurrently."""
        if not pairs:
            return []
        limits = httpx.Limits(max_connections=self.max_connections)
        async with httpx.AsyncClient(timeout=http_timeout(self.timeout), limits=limits) as client:
            if self.renders_locally:
                return await self._score_rendered(client, pairs)
            return await _gather_or_cancel(
                [
                    self._score_messages(client, conversation, response)
                    for conversation, response in pairs
                ]
            )

    async def _score_rendered(
        self, client: httpx.AsyncClient, pairs: Sequence[RewardPair]
    ) -> list[float]:
        texts = await self.render(pairs)
        payload = {"model": self.model, "input": texts, "use_activation": False}
        return await self._classify(client, payload, len(texts))

    async def _score_messages(
        self, client: httpx.AsyncClient, conversation: Sequence[Any], response: str
    ) -> float:
        messages = [*conversation, {"role": "assistant", "content": response}]
        payload = {"model": self.model, "messages": messages, "use_activation": False}
        return (await self._classify(client, payload, 1))[0]

    async def _classify(
        self, client: httpx.AsyncClient, payload: dict[str, Any], expected: int
    ) -> list[float]:
        """The ``expected`` scores of one request, from the server the balancer picks."""

        async def send(base_url: str) -> list[float]:
            url = base_url + "/classify"
            return self._parse_scores(await self._post(client, url, payload), expected, url)

        return await self.balancer.call(send, reward_server_failed)

    async def _post(self, client: httpx.AsyncClient, url: str, payload: dict[str, Any]) -> Any:
        headers = {"Authorization": f"Bearer {self.api_key}"}
        self.requests_sent += 1
        try:
            response = await client.post(url, json=payload, headers=headers)
        except (httpx.NetworkError, httpx.RemoteProtocolError, httpx.ConnectTimeout) as exc:
            raise RewardServerUnavailableError(
                f"reward server at {url} is unreachable or dropped the connection "
                f"({exc.__class__.__name__}: {exc}); is a vLLM server with --runner pooling "
                "running there?"
            ) from exc
        except httpx.TimeoutException as exc:
            raise RewardError(
                f"reward server {url} did not answer within {self.timeout:g}s "
                f"({exc.__class__.__name__})"
            ) from exc
        except httpx.HTTPError as exc:
            raise RewardError(
                f"reward request to {url} failed: {exc.__class__.__name__}: {exc}"
            ) from exc
        if response.status_code >= 400:
            error = RewardError(
                f"reward server {url} answered HTTP {response.status_code}: "
                f"{redact(response.text[:BODY_EXCERPT], (self.api_key,))}"
            )
            error.transient = transient_status(response.status_code)
            error.status_code = response.status_code  # type: ignore[attr-defined]
            raise error
        try:
            return response.json()
        except ValueError as exc:
            raise RewardError(
                f"reward server {url} sent non-JSON: {response.text[:BODY_EXCERPT]}"
            ) from exc

    def _parse_scores(self, body: Any, expected: int, url: str) -> list[float]:
        """``data[i].probs[0]`` of a vLLM ``/classify`` response, ordered by ``index``."""
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise RewardError(
                f"reward server {url} response has no data list: {str(body)[:BODY_EXCERPT]}"
            )
        if len(data) != expected:
            raise RewardError(
                f"reward server {url} returned {len(data)} results for {expected} inputs"
            )
        try:
            ordered = sorted(data, key=lambda item: int(item.get("index", 0)))
        except (AttributeError, TypeError, ValueError) as exc:
            raise RewardError(
                f"reward server {url} results lack an integer index: {str(data)[:BODY_EXCERPT]}"
            ) from exc
        return [self._score_of(position, item, url) for position, item in enumerate(ordered)]

    def _score_of(self, position: int, item: Any, url: str) -> float:
        """``probs[0]`` of one result as a float (NaN/inf are checked by the graph)."""
        try:
            return float(item["probs"][0])
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise RewardError(
                f"reward server {url} result for candidate {position} lacks a "
                f"numeric probs[0]: {str(item)[:BODY_EXCERPT]}"
            ) from exc


def reward_server_failed(exc: BaseException) -> bool:
    """True when the reward server, not the request, is at fault: no connection or a 5xx."""
    if isinstance(exc, RewardServerUnavailableError):
        return True
    return getattr(exc, "status_code", 0) >= 500


async def _gather_or_cancel(coroutines: list[Any]) -> list[Any]:
    """The results of ``coroutines`` run concurrently, in order; the first failure cancels
    the rest and is raised as itself (not as an ``ExceptionGroup``)."""
    tasks = [asyncio.ensure_future(coroutine) for coroutine in coroutines]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
