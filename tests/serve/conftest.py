"""Fixtures of the Chat Completions endpoint tests: the app on fake models, served."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from langgraph_tpo.serve import create_app
from tests.serve.helpers import SMALL, TokenPolicy, length_reward, serving


@pytest.fixture
def policy() -> TokenPolicy:
    return TokenPolicy()


@pytest.fixture
def base_url(policy: TokenPolicy) -> Iterator[str]:
    with serving(create_app(policy, length_reward(), config=SMALL, retry=None)) as url:
        yield url
