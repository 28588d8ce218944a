"""The servers a command runs on: checked before any model work, and described in results."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from langgraph.types import RetryPolicy

from langgraph_tpo.backends.factory import BackendSettings
from langgraph_tpo.backends.plumbing.balancer import split_urls
from langgraph_tpo.backends.servers.vllm_server import openai_api_url, server_root_url
from langgraph_tpo.errors import BackendUnavailableError

SECRET_FIELDS = ("api_key",)
PROBE_TIMEOUT_S = 5.0


def describe_backends(settings: BackendSettings) -> dict[str, Any]:
    """The backend settings as results record them: set fields only, never the API key
    (nor a user:password part of a URL)."""
    values = {
        k: ",".join(_without_credentials(url) for url in split_urls(v)) if k.endswith("_url") else v
        for k, v in settings.model_dump().items()
        if k not in SECRET_FIELDS and v
    }
    return values or {"embedded": True}


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if not parts.username and not parts.password:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def server_probes(settings: BackendSettings) -> list[tuple[str, list[str]]]:
    """``(what, URLs)`` for each kind of server the settings name: the policy servers'
    ``/v1/models`` and the reward servers' ``/health``."""
    probes = []
    if settings.policy_urls:
        probes.append(
            ("policy server", [openai_api_url(u) + "/models" for u in settings.policy_urls])
        )
    if settings.reward_urls:
        probes.append(
            ("reward server", [server_root_url(u) + "/health" for u in settings.reward_urls])
        )
    return probes


def check_servers(settings: BackendSettings, retry: RetryPolicy | None) -> None:
    """Fail fast, naming the URL, when no server of a kind the settings name can be reached.

    Each server is asked ``GET`` once per attempt of the run's retry budget (same backoff),
    so a server still starting gets that long; any HTTP answer counts as reachable (model
    calls report HTTP errors themselves). Of several servers of a kind one answering is
    enough: the balancer sets the others aside and keeps retrying them. No API key is sent.
    """
    for what, urls in server_probes(settings):
        _probe(what, urls, retry)


def _probe(what: str, urls: list[str], retry: RetryPolicy | None) -> None:
    attempts = retry.max_attempts if retry else 1
    interval = retry.initial_interval if retry else 0.0
    started = time.monotonic()
    failure = ""
    for attempt in range(1, attempts + 1):
        for url in urls:
            try:
                httpx.get(url, timeout=PROBE_TIMEOUT_S)
                return
            except httpx.TransportError as exc:  # refused, reset, timed out, DNS
                failure = f"{type(exc).__name__}: {exc}"
        if attempt < attempts and retry is not None:
            time.sleep(interval)
            interval = min(interval * retry.backoff_factor, retry.max_interval)
    tries = "once" if attempts == 1 else f"{attempts} times over {time.monotonic() - started:.1f}s"
    where = urls[0] if len(urls) == 1 else "each of " + ", ".join(urls)
    raise BackendUnavailableError(
        f"{what} at {where} is unreachable: tried GET {tries} ({failure}); is it running? "
        "(--retries sets how long to wait for a server that is starting)"
    )
