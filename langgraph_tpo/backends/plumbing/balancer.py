"""Spread requests over several servers of the same model.

:class:`Balancer` picks, for each request, the server with the fewest requests in flight
(ties: the one that has served fewest). A server whose request fails with a connection error
or a 5xx is set aside for a back-off (1 s, doubling per consecutive failure, at most 60 s) and
the request is sent again to the next best server; after the back-off the server is tried
again, and one success brings it back. When every server is set aside, the one whose back-off
ends first is tried anyway, so a run never stalls on the balancer itself.

Counts per server (requests, failures) are kept for the whole process and, inside
:func:`count_requests`, for one unit of work (one prompt of ``tpo eval``): the block's
counter travels in a context variable, so the requests made by every task the block starts
are counted, even with many prompts running at once.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from langgraph_tpo.errors import ConfigError

T = TypeVar("T")
INITIAL_BACKOFF_S = 1.0
MAX_BACKOFF_S = 60.0

_request_counts: contextvars.ContextVar[Counter[str] | None] = contextvars.ContextVar(
    "tpo_request_counts", default=None
)


@contextlib.contextmanager
def count_requests() -> Iterator[Counter[str]]:
    """Count the requests sent in this block (and the tasks it starts), keyed ``role url``."""
    counter: Counter[str] = Counter()
    token = _request_counts.set(counter)
    try:
        yield counter
    finally:
        _request_counts.reset(token)


def split_urls(value: str | Sequence[str] | None) -> list[str]:
    """URLs from a comma-separated string, a list of them, or a mix; blanks dropped."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    return [part.strip() for item in items for part in str(item).split(",") if part.strip()]


@dataclass
class Endpoint:
    """One server: its URL and what the balancer knows about it."""

    url: str
    in_flight: int = 0
    requests: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    set_aside_until: float = 0.0

    def available(self, now: float) -> bool:
        return now >= self.set_aside_until


class Balancer:
    """Least-outstanding-requests choice among ``urls``, with failing servers set aside.

    ``role`` ("policy", "reward") names the servers in counts and messages. Thread-safe: the
    counters are guarded by a lock, so sync callers in worker threads may share it.
    """

    def __init__(
        self,
        urls: Sequence[str],
        role: str,
        *,
        initial_backoff_s: float = INITIAL_BACKOFF_S,
        max_backoff_s: float = MAX_BACKOFF_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not urls:
            raise ConfigError(f"{role}: at least one server URL is needed")
        if len(set(urls)) != len(urls):
            raise ConfigError(f"{role}: server URLs repeat: {list(urls)}")
        self.role = role
        self.endpoints = [Endpoint(url) for url in urls]
        self.initial_backoff_s = initial_backoff_s
        self.max_backoff_s = max_backoff_s
        self._clock = clock
        self._lock = threading.Lock()

    @property
    def urls(self) -> list[str]:
        return [endpoint.url for endpoint in self.endpoints]

    def pick(self, exclude: Sequence[Endpoint] = ()) -> Endpoint | None:
        """The server for the next request (not in ``exclude``), now marked in flight;
        None when every server is excluded."""
        with self._lock:
            now = self._clock()
            candidates = [e for e in self.endpoints if e not in exclude]
            if not candidates:
                return None
            ready = [e for e in candidates if e.available(now)]
            if ready:
                chosen = min(ready, key=lambda e: (e.in_flight, e.requests))
            else:
                chosen = min(candidates, key=lambda e: e.set_aside_until)
            chosen.in_flight += 1
            chosen.requests += 1
        counts = _request_counts.get()
        if counts is not None:
            counts[f"{self.role} {chosen.url}"] += 1
        return chosen

    def done(self, endpoint: Endpoint, *, failed: bool | None) -> None:
        """The request sent to ``endpoint`` ended: ``failed`` True sets the server aside,
        False (a success) brings it back, None (cancelled, or the request's own fault)
        changes nothing."""
        with self._lock:
            endpoint.in_flight -= 1
            if failed is None:
                return
            if not failed:
                endpoint.consecutive_failures = 0
                endpoint.set_aside_until = 0.0
                return
            endpoint.failures += 1
            endpoint.consecutive_failures += 1
            backoff = self.initial_backoff_s * 2 ** (endpoint.consecutive_failures - 1)
            endpoint.set_aside_until = self._clock() + min(backoff, self.max_backoff_s)

    def attempts(self, server_failed: Callable[[BaseException], bool]) -> Iterator[Attempt]:
        """One :class:`Attempt` per server, best first, each server at most once: use each
        as ``with attempt: return send(attempt.url)``. A failure the server is at fault
        for (``server_failed(exc)``) moves on to the next server; any other error, or the
        last server's failure, is raised."""
        tried: list[Endpoint] = []
        while (endpoint := self.pick(exclude=tried)) is not None:
            tried.append(endpoint)
            yield Attempt(self, endpoint, server_failed, last=len(tried) == len(self.endpoints))

    async def call(
        self,
        send: Callable[[str], Awaitable[T]],
        server_failed: Callable[[BaseException], bool],
    ) -> T:
        """``await send(url)`` on the best server, then on the next ones (:meth:`attempts`)."""
        for attempt in self.attempts(server_failed):
            with attempt:
                return await send(attempt.url)
        raise AssertionError("unreachable: the last server's failure is raised")

    def call_sync(
        self, send: Callable[[str], T], server_failed: Callable[[BaseException], bool]
    ) -> T:
        """:meth:`call` for a blocking ``send``."""
        for attempt in self.attempts(server_failed):
            with attempt:
                return send(attempt.url)
        raise AssertionError("unreachable: the last server's failure is raised")

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per URL: requests sent, failures, and whether it is set aside now."""
        with self._lock:
            now = self._clock()
            return {
                e.url: {
                    "requests": e.requests,
                    "failures": e.failures,
                    "set_aside": not e.available(now),
                }
                for e in self.endpoints
            }


@dataclass
class Attempt:
    """One request to one server: records how it ended, and on leaving the ``with`` block
    swallows a failure the next server should retry."""

    balancer: Balancer
    endpoint: Endpoint
    server_failed: Callable[[BaseException], bool]
    last: bool

    @property
    def url(self) -> str:
        return self.endpoint.url

    def __enter__(self) -> Attempt:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, _: Any) -> bool:
        if exc is None:
            self.balancer.done(self.endpoint, failed=False)
            return False
        at_fault = isinstance(exc, Exception) and self.server_failed(exc)
        self.balancer.done(self.endpoint, failed=True if at_fault else None)
        return at_fault and not self.last  # True: try the next server
