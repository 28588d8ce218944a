"""The policy and reward a command runs on, built from backend settings."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from langchain_core.language_models import BaseChatModel

from langgraph_tpo.backends import factory
from langgraph_tpo.backends.factory import BackendSettings
from langgraph_tpo.cli.testing_hooks import fake_backends_enabled
from langgraph_tpo.reward import BatchReward

SECRET_FIELDS = ("api_key",)


def build_models(settings: BackendSettings) -> tuple[BaseChatModel, BatchReward]:
    """Load (or connect to) the policy and the reward the settings name."""
    return factory.build_models(settings)


def describe_backends(settings: BackendSettings) -> dict[str, Any]:
    """The backend settings as results record them: set fields only, never the API key
    (nor a user:password part of a URL)."""
    values = {
        k: _without_credentials(v) if k.endswith("_url") else v
        for k, v in asdict(settings).items()
        if k not in SECRET_FIELDS and v
    }
    if fake_backends_enabled():
        values["fake"] = True
    return values or {"embedded": True}


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if not parts.username and not parts.password:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
