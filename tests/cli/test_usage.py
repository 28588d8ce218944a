"""The command line's own behaviour: usage errors as one line, and a ``--help`` that imports
nothing heavy (the time it takes is measured by ``benchmarks/cli_startup.py``)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import spawn

HEAVY = ("langgraph", "langchain_core", "openai", "torch", "transformers", "httpx", "pydantic")


@pytest.mark.parametrize(
    "args,message",
    [
        (["run"], "error: Missing argument 'prompt'. (see 'tpo run --help')"),
        (["run", "q", "--threshold", "high"], "error: Invalid value for '--threshold'"),
        (["run", "q", "--bogus"], "error: No such option: --bogus (see 'tpo run --help')"),
        (["runn"], "error: No such command 'runn'. (see 'tpo --help')"),
        (
            ["eval", "missing.jsonl", "-o", "r.jsonl"],
            "error: Invalid value for 'data': path 'missing.jsonl' does not exist",
        ),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(args: list[str], message: str) -> None:
    process = spawn(args, {})
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 2
    assert stderr.startswith(message) and stderr.count("\n") == 1, stderr
    assert stdout == ""


def test_help_imports_no_model_or_graph_library() -> None:
    code = (
        "import sys, json\n"
        "from langgraph_tpo.cli import app\n"
        "try:\n"
        "    app(['--help'], prog_name='tpo')\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Commands" in done.stdout and "serve" in done.stdout
    assert json.loads(done.stdout.splitlines()[-1]) == []


def test_package_names_are_imported_on_first_use() -> None:
    code = (
        "import sys, langgraph_tpo\n"
        "assert 'langgraph' not in sys.modules\n"
        "from langgraph_tpo import create_tpo_graph, TPOConfig, ConfigError\n"
        "assert callable(create_tpo_graph) and 'langgraph' in sys.modules\n"
        "assert set(langgraph_tpo.__all__) <= set(dir(langgraph_tpo))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_the_listing_summarizes_each_command_as_its_own_help_does() -> None:
    from langgraph_tpo.cli.app import COMMANDS, command_function, command_summary, help_text

    for name in COMMANDS:
        summary = command_summary(name)  # read from the source, before the module is imported
        assert summary and "\n" not in summary, name
        assert help_text(command_function(name)).split("\n\n")[0] == summary, name
