"""LangChain's standard chat-model integration suite (``langchain-tests``) on ``ChatOpenAI``
pointed at a real ``tpo serve``, running on the embedded CPU default (SmolLM2-135M-Instruct
in-process, judged by itself) with small budgets: N=2, D=1, 12 new tokens a call.

What ``tpo serve`` does not offer is declared through the suite's own flags, each with its
reason; everything else runs and must pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from langchain_openai import ChatOpenAI
from langchain_tests.integration_tests import ChatModelIntegrationTests

from tests.serve.helpers import tpo_serve

pytestmark = pytest.mark.slow

SERVER_ARGS = ["-n", "2", "-d", "1", "--max-tokens", "12", "--seed", "1"]
SERVED: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One ``tpo serve`` on the embedded model for the whole suite (no backend flags)."""
    with tpo_serve(SERVER_ARGS, tmp_path_factory.mktemp("standard"), ready_s=600) as server:
        SERVED["url"] = server.url
        yield server.url
        log = server.stop()
    assert "'embedded': True" in log and "Traceback" not in log


class TestChatOpenAIOnTPOServe(ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[ChatOpenAI]:
        return ChatOpenAI

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {
            "model": "tpo",
            "base_url": SERVED["url"],
            "api_key": "unused",
            "stream_usage": True,  # the server sends a usage chunk on request
            # a client per model: the async tests each run on an event loop of their own,
            # and langchain-openai's shared default client would outlive its loop
            "http_async_client": httpx.AsyncClient(timeout=600),
        }

    @property
    def standard_chat_model_params(self) -> dict[str, Any]:
        # the suite's defaults, with the budget of a CPU run: 12 new tokens (not 100), and
        # time for a whole TPO run (sample, score, critique, update, score) per request
        return {**super().standard_chat_model_params, "max_tokens": 12, "timeout": 600}

    @property
    def model_override_value(self) -> str:
        return "tpo-bon"  # another pipeline of the same server: best-of-N

    # --- what tpo serve does not offer -----------------------------------------------------
    @property
    def has_tool_calling(self) -> bool:
        return False  # TPO optimizes a text reply; a request with `tools` is a 400

    @property
    def has_tool_choice(self) -> bool:
        return False  # no tools (above)

    @property
    def has_structured_output(self) -> bool:
        return False  # needs tools or `response_format` json_schema, both refused with 400

    @property
    def supports_json_mode(self) -> bool:
        return False  # `response_format` other than {"type": "text"} is a 400

    @property
    def supports_image_inputs(self) -> bool:
        return False  # text content parts only (the reward model reads text)

    @property
    def supports_image_urls(self) -> bool:
        return False  # as images

    @property
    def supports_pdf_inputs(self) -> bool:
        return False  # text only

    @property
    def supports_audio_inputs(self) -> bool:
        return False  # text only

    @property
    def supports_anthropic_inputs(self) -> bool:
        return False  # Anthropic-format content blocks (tool_use, images): not text

    @property
    def returns_usage_metadata(self) -> bool:
        return True  # the sum over every policy call of the run
