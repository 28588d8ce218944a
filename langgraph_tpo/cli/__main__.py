"""``python -m langgraph_tpo.cli``: the ``tpo`` command."""

from langgraph_tpo.cli.app import app

if __name__ == "__main__":  # in-process vLLM spawns its engine core, which imports __main__
    app(prog_name="tpo")
