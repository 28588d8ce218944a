"""``python -m langgraph_tpo.cli``: the ``tpo`` command."""

from langgraph_tpo.cli.app import app

app(prog_name="tpo")
