"""The integration tests run against real vLLM servers: the session fixture ``vllm_servers``
of ``tests/conftest.py`` (started once, shared with the reliability and benchmark tests).

Set ``TPO_TEST_POLICY_URL`` and ``TPO_TEST_REWARD_URL`` to use servers that are already
running (served names from ``TPO_TEST_POLICY_MODEL``/``TPO_TEST_REWARD_MODEL``, defaults
``smollm2``/``tiny-rm``; the reward tokenizer from ``TPO_TEST_REWARD_TOKENIZER``).
"""

from __future__ import annotations

from testsupport.pair import POLICY_NAME, REWARD_NAME, ServerPair

VLLMServers = ServerPair  # the name these tests use for the pair of servers
__all__ = ["POLICY_NAME", "REWARD_NAME", "VLLMServers"]
