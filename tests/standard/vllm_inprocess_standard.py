"""LangChain's standard chat model suites for the in-process VLLMChatModel (SmolLM2 on
vLLM's CPU engine). Not collected by the dev venv's pytest (the name has no ``test_``):
``test_vllm_inprocess_standard.py`` runs it with the python of the langgraph-tpo + vLLM
venv, where vllm and langchain-tests are installed:

    python -m pytest tests/standard/vllm_inprocess_standard.py

``TPO_STANDARD_VLLM_MODEL`` names the model directory (a transformers directory of
SmolLM2). Every test shares one engine (the process's engine for the model and args).
"""

from __future__ import annotations

import os
from typing import Any

from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from langgraph_tpo.backends.inprocess.vllm_inprocess import VLLMChatModel
from tests.standard.features import TextOnlyChatModel
from testsupport.vllm_env import CPU_ENGINE_ARGS

MODEL_ENV = "TPO_STANDARD_VLLM_MODEL"


def model_params() -> dict[str, Any]:
    return {"model": os.environ[MODEL_ENV], "engine_args": dict(CPU_ENGINE_ARGS)}


class TestVLLMChatModelUnit(TextOnlyChatModel, ChatModelUnitTests):
    model_class = VLLMChatModel

    def params(self) -> dict[str, Any]:
        return model_params()  # the unit suite passes its own max_tokens and stop


class TestVLLMChatModelIntegration(TextOnlyChatModel, ChatModelIntegrationTests):
    model_class = VLLMChatModel

    def params(self) -> dict[str, Any]:
        return {**model_params(), "max_tokens": 12, "temperature": 0}
