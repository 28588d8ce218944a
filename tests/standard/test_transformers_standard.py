"""LangChain's standard chat model suites for TransformersChatModel on the embedded SmolLM2
(a few tokens per call, greedy, so the suite takes a few minutes on CPU)."""

from __future__ import annotations

import importlib.util

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from langgraph_tpo.backends.inprocess.transformers_chat import TransformersChatModel
from tests.standard.features import TextOnlyChatModel

if importlib.util.find_spec("torch") is None or importlib.util.find_spec("transformers") is None:
    pytest.skip("needs the `local` extra (torch, transformers)", allow_module_level=True)

# The unit suite passes its own max_tokens and stop beside these, so they hold neither.
UNIT_PARAMS = {"temperature": 0}
PARAMS = {"max_tokens": 12, "temperature": 0}


class TestTransformersChatModelUnit(TextOnlyChatModel, ChatModelUnitTests):
    model_class = TransformersChatModel
    model_params = UNIT_PARAMS


@pytest.mark.slow
class TestTransformersChatModelIntegration(TextOnlyChatModel, ChatModelIntegrationTests):
    model_class = TransformersChatModel
    model_params = PARAMS
