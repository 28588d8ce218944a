"""Errors raised by langgraph-tpo. Each names what was wrong."""

from __future__ import annotations


class TPOError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(TPOError, ValueError):
    """A configuration value or a graph input is invalid."""


class RewardError(TPOError):
    """The reward model failed, or returned a score that cannot be ranked."""


class PolicyError(TPOError):
    """The policy model failed to produce text."""


class BackendUnavailableError(TPOError):
    """A model backend cannot be reached or loaded; the message says what was tried."""
