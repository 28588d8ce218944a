"""Errors raised by langgraph-tpo. Each names what was wrong."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable


class TPOError(Exception):
    """Base class of every error this package raises on purpose.

    ``transient`` is True when retrying the same call may succeed (a server that is
    down, restarting or overloaded); the graph's node retry policy uses it.
    """

    transient: bool = False


class ConfigError(TPOError, ValueError):
    """A configuration value or a graph input is invalid."""


class RewardError(TPOError):
    """The reward model failed, or returned a score that cannot be ranked."""


class PolicyError(TPOError):
    """The policy model failed to produce text."""


class BackendUnavailableError(TPOError):
    """A model backend cannot be reached or loaded; the message says what was tried.

    Not transient unless marked so: a path that does not exist or a directory without
    model files stays wrong however often it is retried. A server that cannot be reached
    is raised as a transient subclass (``RewardServerUnavailableError``) or with the
    connection error as its cause.
    """


class ContextTooLongError(PolicyError):
    """The prompt (plus max_tokens) does not fit the model's context window."""


_TRANSIENT_NAMES = {
    "APIConnectionError",
    "APITimeoutError",
    "InternalServerError",
    "RateLimitError",
    "ConnectError",
    "ConnectTimeout",
    "ReadTimeout",
    "WriteTimeout",
    "PoolTimeout",
    "ReadError",
    "RemoteProtocolError",
    "ServiceUnavailableError",
}
_CONTEXT_MARKERS = (
    "maximum context length",
    "context length",
    "max_model_len",
    "too many tokens",
    "prompt is too long",
    "input is too long",
)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def transient_status(status: int) -> bool:
    """HTTP statuses worth retrying: 408, 429 and 5xx (overloaded, restarting, gateway).

    400, 401, 403, 404 and 422 (a bad request, a wrong key or model name) are answered
    the same way every time.
    """
    return status in (408, 429) or status >= 500


def is_transient(exc: BaseException) -> bool:
    """A failure worth retrying: connection refused/reset, timeouts, HTTP 408/429/5xx, or an
    error of ours marked ``transient`` (anywhere in the cause chain).

    Everything else is permanent and reported at once: a missing file or model directory,
    HTTP 400/401/404, a wrong type.
    """
    for err in _chain(exc):
        if isinstance(err, ConnectionError | TimeoutError):
            return True
        if isinstance(err, TPOError) and err.transient:
            return True
        if type(err).__name__ in _TRANSIENT_NAMES:
            return True
        status = getattr(err, "status_code", None) or getattr(
            getattr(err, "response", None), "status_code", None
        )
        if isinstance(status, int) and transient_status(status):
            return True
    return False


def is_context_too_long(exc: BaseException) -> bool:
    """An HTTP 400 (or similar) saying the prompt does not fit the context window."""
    for err in _chain(exc):
        if isinstance(err, ContextTooLongError):
            return True
        text = str(err).lower()
        if any(marker in text for marker in _CONTEXT_MARKERS):
            return True
    return False


_KEY_PATTERN = re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}")
SECRET_ENV_VARS = ("TPO_API_KEY", "OPENAI_API_KEY")
NO_KEY = "EMPTY"  # what OpenAI-compatible clients send when there is no key
MASK = "***"


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with API keys masked: the given secrets, the key env vars, and ``sk-...`` keys.

    Error messages may quote what a server sent back, and a server may echo the key. The
    one redaction of the package: CLI error lines, server errors and model errors use it.
    """
    for secret in (*secrets, *(os.environ.get(name) for name in SECRET_ENV_VARS)):
        if secret and len(secret) >= 4 and secret != NO_KEY:
            text = text.replace(secret, MASK)
    return _KEY_PATTERN.sub("sk-" + MASK, text)
