"""Real vLLM servers for the integration tests, started once per session.

Set ``TPO_TEST_POLICY_URL`` and ``TPO_TEST_REWARD_URL`` to use servers that are already
running (served names from ``TPO_TEST_POLICY_MODEL``/``TPO_TEST_REWARD_MODEL``, defaults
``smollm2``/``tiny-rm``; the reward tokenizer from ``TPO_TEST_REWARD_TOKENIZER``, default the
tiny reward model built here). Otherwise the vLLM venv is installed if needed, both models are
built (cached), and a policy and a pooling reward server are started concurrently.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from langgraph_tpo.testing import VLLMServer
from langgraph_tpo.testing.pair import (
    POLICY_NAME,
    REWARD_NAME,
    ServerPair,
    external_server_pair,
    start_server_pair,
)

VLLMServers = ServerPair  # the name these tests use for the pair of servers
__all__ = ["POLICY_NAME", "REWARD_NAME", "VLLMServers"]


def _external_servers() -> VLLMServers | None:
    policy_url = os.environ.get("TPO_TEST_POLICY_URL")
    reward_url = os.environ.get("TPO_TEST_REWARD_URL")
    if not (policy_url and reward_url):
        return None
    return external_server_pair(
        policy_url,
        reward_url,
        policy_model=os.environ.get("TPO_TEST_POLICY_MODEL", POLICY_NAME),
        reward_model=os.environ.get("TPO_TEST_REWARD_MODEL", REWARD_NAME),
        reward_tokenizer=os.environ.get("TPO_TEST_REWARD_TOKENIZER"),
    )


def _start_servers(servers: list[VLLMServer]) -> VLLMServers:
    """Build what is missing and start both servers, appending each to ``servers`` as it starts."""
    return start_server_pair(servers)


@pytest.fixture(scope="session")
def vllm_servers() -> Iterator[VLLMServers]:
    """A policy (``smollm2``) and a reward (``tiny-rm``) vLLM server, stopped at session end."""
    external = _external_servers()
    if external is not None:
        yield external
        return
    servers: list[VLLMServer] = []
    try:
        yield _start_servers(servers)
    finally:
        for server in servers:
            server.stop()
