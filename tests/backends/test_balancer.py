"""The balancer's choice of server, set-aside and back-off (pure logic, a fake clock).

The same balancer against real vLLM servers, one of them killed mid-run, is tested in
tests/integration/test_several_servers.py.
"""

from __future__ import annotations

import asyncio

import pytest

from langgraph_tpo.backends.plumbing.balancer import Balancer, count_requests, split_urls
from langgraph_tpo.errors import ConfigError


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class ServerDown(Exception):
    pass


def down(exc: BaseException) -> bool:
    return isinstance(exc, ServerDown)


def test_split_urls_takes_commas_lists_and_mixes() -> None:
    assert split_urls("http://a:1, http://b:2,") == ["http://a:1", "http://b:2"]
    assert split_urls(["http://a:1", "http://b:2,http://c:3"]) == [
        "http://a:1",
        "http://b:2",
        "http://c:3",
    ]
    assert split_urls(None) == [] and split_urls(" , ") == []


def test_fewest_in_flight_wins_then_fewest_served() -> None:
    balancer = Balancer(["a", "b", "c"], "policy")
    first, second, third = (balancer.pick() for _ in range(3))
    assert {first.url, second.url, third.url} == {"a", "b", "c"}  # type: ignore[union-attr]
    balancer.done(second, failed=False)  # type: ignore[arg-type]
    assert balancer.pick() is second  # the only one with nothing in flight


def test_failing_server_is_set_aside_with_growing_backoff_then_retried() -> None:
    clock = Clock()
    balancer = Balancer(["a", "b"], "reward", clock=clock)
    a, b = balancer.endpoints
    for expected_backoff in (1.0, 2.0, 4.0):
        balancer.pick(exclude=[b])
        balancer.done(a, failed=True)
        assert a.set_aside_until == pytest.approx(clock.now + expected_backoff)
        assert [balancer.pick() for _ in range(3)] == [b, b, b]  # a is set aside
        for _ in range(3):
            balancer.done(b, failed=False)
    assert balancer.stats()["a"] == {"requests": 3, "failures": 3, "set_aside": True}
    clock.now += 4.0
    assert balancer.pick() is a  # back-off over: tried again
    balancer.done(a, failed=False)
    assert a.consecutive_failures == 0 and balancer.stats()["a"]["set_aside"] is False


def test_all_set_aside_tries_the_one_whose_backoff_ends_first() -> None:
    clock = Clock()
    balancer = Balancer(["a", "b"], "policy", clock=clock)
    a, b = balancer.endpoints
    for endpoint in (a, a, b):
        balancer.pick(exclude=[x for x in (a, b) if x is not endpoint])
        balancer.done(endpoint, failed=True)
    assert balancer.pick() is b  # a: 2 s back-off, b: 1 s


async def test_call_sends_a_failed_request_elsewhere_once_per_server() -> None:
    balancer = Balancer(["a", "b", "c"], "policy")
    sent: list[str] = []

    async def send(url: str) -> str:
        sent.append(url)
        if url != "c":
            raise ServerDown(url)
        return "ok from " + url

    assert await balancer.call(send, down) == "ok from c"
    assert sorted(sent) == ["a", "b", "c"]
    stats = balancer.stats()
    assert [stats[u]["failures"] for u in "abc"] == [1, 1, 0]
    assert all(e.in_flight == 0 for e in balancer.endpoints)

    sent.clear()

    async def all_down(url: str) -> str:
        sent.append(url)
        raise ServerDown(url)

    with pytest.raises(ServerDown):
        await balancer.call(all_down, down)
    assert sorted(sent) == ["a", "b", "c"]  # each server once, then the last error


async def test_request_errors_are_not_resent_and_do_not_set_aside() -> None:
    balancer = Balancer(["a", "b"], "reward")

    async def bad_request(url: str) -> str:
        raise ValueError("HTTP 400")

    with pytest.raises(ValueError):
        await balancer.call(bad_request, down)
    assert sum(s["requests"] for s in balancer.stats().values()) == 1
    assert not any(s["set_aside"] for s in balancer.stats().values())


async def test_count_requests_counts_per_unit_of_work_across_tasks() -> None:
    balancer = Balancer(["a", "b"], "policy")

    async def ok(url: str) -> str:
        await asyncio.sleep(0.01)
        return url

    async def unit(requests: int) -> dict[str, int]:
        with count_requests() as counts:
            await asyncio.gather(*(balancer.call(ok, down) for _ in range(requests)))
            return dict(counts)

    first, second = await asyncio.gather(unit(3), unit(5))
    assert sum(first.values()) == 3 and sum(second.values()) == 5
    assert set(first) | set(second) <= {"policy a", "policy b"}


def test_balancer_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="at least one"):
        Balancer([], "policy")
    with pytest.raises(ConfigError, match="repeat"):
        Balancer(["a", "a"], "policy")
