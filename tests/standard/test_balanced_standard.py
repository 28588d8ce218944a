"""LangChain's standard chat model suites for BalancedChatModel: the unit suite needs no
server; the integration suite runs against the session's vLLM CPU policy server
(``vllm_servers`` of tests/conftest.py, shared with the integration tests)."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from langgraph_tpo.backends.servers.multi_server import BalancedChatModel
from langgraph_tpo.backends.servers.vllm_server import VLLMChatOpenAI, openai_timeout
from tests.standard.features import TextOnlyChatModel
from testsupport.pair import ServerPair


def client(url: str, model: str) -> VLLMChatOpenAI:
    """One server's client, greedy and short (the suite's prompts need a few words)."""
    return VLLMChatOpenAI(
        model=model,
        base_url=url,
        api_key="EMPTY",
        timeout=openai_timeout(120),
        max_tokens=12,
        temperature=0,
    )


class TestBalancedChatModelUnit(TextOnlyChatModel, ChatModelUnitTests):
    model_class = BalancedChatModel

    def params(self) -> dict[str, Any]:
        return {"clients": [client("http://127.0.0.1:9/v1", "smollm2")]}  # never called


@pytest.mark.integration
@pytest.mark.slow
class TestBalancedChatModelIntegration(TextOnlyChatModel, ChatModelIntegrationTests):
    servers: ServerPair | None = None

    @pytest.fixture(autouse=True)
    def _servers(self, vllm_servers: ServerPair) -> None:
        type(self).servers = vllm_servers

    model_class = BalancedChatModel

    def params(self) -> dict[str, Any]:
        assert self.servers is not None
        return {"clients": [client(self.servers.policy_openai_url, self.servers.policy_model)]}


@pytest.mark.integration
@pytest.mark.slow
async def test_a_stream_moves_to_the_next_server_before_its_first_chunk(
    vllm_servers: ServerPair,
) -> None:
    dead = client("http://127.0.0.1:9/v1", vllm_servers.policy_model)  # nothing listens
    live = client(vllm_servers.policy_openai_url, vllm_servers.policy_model)
    model = BalancedChatModel(clients=[dead, live])
    chunks = [chunk async for chunk in model.astream("Say hello.", stop=["\n"])]
    full = chunks[0]
    for chunk in chunks[1:]:
        full += chunk
    assert len(chunks) >= 2 and full.text and "\n" not in full.text
    assert full.usage_metadata and full.usage_metadata["output_tokens"] > 0  # stream_usage
    stats = model.balancer.stats()
    assert stats["http://127.0.0.1:9/v1"]["failures"] == 1
    assert stats[vllm_servers.policy_openai_url]["requests"] == 1
