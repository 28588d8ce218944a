"""The ``tpo`` command line."""

from langgraph_tpo.cli.app import app

__all__ = ["app"]
