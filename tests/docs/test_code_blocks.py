"""Every fenced block of README.md and docs/*.md is run, parsed or checked as written.

* ``python``: run as a program (blocks marked ``continues`` after the page's previous
  Python block), on the test suite's instant fake models through the ``TPO_*`` factory
  variables (:func:`testsupport.fake_backends.fake_backend_env`), which ``build_models()``
  reads. A block that is an ``examples/`` file verbatim is run by
  tests/examples/test_examples.py instead (checked below).
* ``bash``: run with ``bash -e`` in the page's working directory on the same fakes; the
  files the page shows (``<!-- file: NAME -->``) are written there first.
* ``toml``/``yaml``/``json``: parsed; a ``tpo.toml``-like settings file is loaded through
  the CLI's own settings reader.
* ``mermaid``: must be what ``graph.get_graph().draw_mermaid()`` draws.
* ``text``: output shown to the reader, not code.
* A block that cannot run here carries ``<!-- not run: REASON -->``; the ``tpo`` commands in
  it are still parsed by the CLI, so a renamed flag fails here.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import typer
import yaml

from tests.docs.blocks import PAGES, ROOT, Block, all_blocks, blocks
from testsupport.fake_backends import fake_backend_env

EXAMPLES = {
    path.name: path.read_text(encoding="utf-8").split('"""', 2)[2].strip()
    for path in sorted((ROOT / "examples").glob("*.py"))
}
RUNNABLE = {"python", "bash", "toml", "yaml", "json", "mermaid"}
SHOWN = {"text"}  # output or diagrams for the reader, not code
FRESH_VENV_TEST = "tests/docs/test_fresh_install.py"
# What some blocks must print on the fake models (the page says so in a comment).
EXPECTED_OUTPUT = {
    ("docs/langgraph.md", "class AgentState"): [
        "MessagesState ['messages']",
        "AgentState ['messages', 'score', 'trajectory']",
    ],
    ("docs/limits.md", "max_seconds"): ["budget "],
    ("docs/limits.md", "context_window"): ["window of 8192 tokens"],
}


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


def environment() -> dict[str, str]:
    """The test run's environment on the fake models, with this venv's ``tpo`` first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TPO_")}
    env.update(fake_backend_env(env))
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["NO_COLOR"] = "1"
    return env


def example_of(block: Block) -> str | None:
    """The examples/ file this block shows verbatim, if any."""
    return next((name for name, code in EXAMPLES.items() if block.text.strip() == code), None)


def run(args: list[str], cwd: Path, block: Block) -> str:
    done = subprocess.run(
        args, cwd=cwd, env=environment(), capture_output=True, text=True, timeout=300
    )
    output = f"{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    assert done.returncode == 0, f"{block.where} failed:\n{output}"
    return done.stdout


# ------------------------------------------------------------------ inventory


def test_every_block_has_a_known_language_and_every_unrun_block_a_reason() -> None:
    found = all_blocks()
    unknown = [b.where for b in found if b.lang not in RUNNABLE | SHOWN]
    assert not unknown, f"blocks of a language this test does not run: {unknown}"
    not_run = [b for b in found if b.marker == "not run"]
    assert all(len(b.marker_text) >= 10 for b in not_run), [b.where for b in not_run]
    runnable = [b for b in found if b.lang in RUNNABLE]
    # the count is printed with -s / -rA and kept small: most blocks run
    print(f"{len(found)} blocks: {len(runnable)} code, {len(not_run)} not run (with reasons)")
    assert len(not_run) <= len(runnable) // 2


def test_blocks_marked_as_run_elsewhere_are_run_there() -> None:
    for block in all_blocks():
        if block.marker == "run":
            assert FRESH_VENV_TEST in block.marker_text, block.where
            first = next(b for b in blocks(ROOT / "README.md") if b.lang == "python")
            assert block == first, "the fresh-venv test runs the README's first Python block"


def test_every_example_shown_is_run_by_the_examples_tests() -> None:
    tests = (ROOT / "tests" / "examples" / "test_examples.py").read_text(encoding="utf-8")
    shown = {example_of(b) for b in all_blocks()} - {None}
    assert shown == set(EXAMPLES), f"examples not shown in the docs: {set(EXAMPLES) - shown}"
    for name in shown:
        assert f'run_example("{name}"' in tests, f"{name} is shown but not run"


# ------------------------------------------------------------------ running


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_the_blocks_of_a_page_run_as_written(page: Path, tmp_path: Path) -> None:
    program = ""
    for block in blocks(page):
        if block.marker == "file":
            (tmp_path / block.marker_text).write_text(block.text, encoding="utf-8")
        if block.marker in ("not run", "run"):
            if block.lang == "bash":
                parse_tpo_commands(block, tmp_path)
            continue
        if block.lang == "python":
            program = program + "\n" + block.text if block.marker == "continues" else block.text
            if example_of(block) is None:
                check_output(block, run([sys.executable, "-c", program], tmp_path, block))
        elif block.lang == "bash":
            run(["bash", "-e", "-o", "pipefail", "-c", block.text], tmp_path, block)
        elif block.lang in ("toml", "yaml", "json"):
            check_data_file(block, tmp_path)
        elif block.lang == "mermaid":
            check_mermaid(block)


def check_output(block: Block, out: str) -> None:
    for (page, needle), expected in EXPECTED_OUTPUT.items():
        if page_id(block.page) == page and needle in block.text:
            for line in expected:
                assert line in out, f"{block.where} printed {out!r}, expected {line!r}"


def check_data_file(block: Block, cwd: Path) -> None:
    parse = {"toml": tomllib.loads, "yaml": yaml.safe_load, "json": json.loads}[block.lang]
    value = parse(block.text)
    assert value is not None, block.where
    name = block.marker_text if block.marker == "file" else ""
    if name.startswith("tpo.") or "settings" in name:
        from langgraph_tpo.cli.options import read_settings_file

        assert read_settings_file(cwd / name), f"{block.where}: no settings read"


def check_mermaid(block: Block) -> None:
    from langgraph_tpo import create_tpo_graph
    from langgraph_tpo.fakes import FakeNPolicy

    graph = create_tpo_graph(FakeNPolicy(), lambda query, response: 1.0)
    assert block.text.strip() == graph.get_graph().draw_mermaid().strip(), block.where


# ------------------------------------------------------------------ commands not run


def tpo_commands(text: str) -> list[list[str]]:
    """The ``tpo`` command lines of a shell block (continuations joined, redirections and
    comments left out)."""
    joined = text.replace("\\\n", " ")
    commands = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        if words[:1] == ["tpo"]:
            cut = next((i for i, w in enumerate(words) if w in (">", "<", "|")), len(words))
            commands.append(words[1:cut])
    return commands


def parse_tpo_commands(block: Block, cwd: Path) -> None:
    """Parse each ``tpo`` command with the CLI's own parser, running nothing: every
    command, flag and value type must exist (files it names need not)."""
    from langgraph_tpo.cli.app import COMMANDS, load_command

    for args in tpo_commands(block.text):
        assert args and args[0] in COMMANDS, f"{block.where}: unknown command tpo {args}"
        command = load_command(args[0])
        context = None
        rest = args[1:]
        while hasattr(command, "get_command") and rest:  # a group: tpo prompts show
            context = command.make_context(
                command.name or "", [], parent=context, resilient_parsing=True
            )
            sub = command.get_command(context, rest[0])
            assert sub is not None, f"{block.where}: unknown command in tpo {' '.join(args)}"
            command, rest = sub, rest[1:]
        try:
            command.make_context(command.name or "", rest, parent=context)
        except typer.TyperException as exc:  # a usage error, or a value of the wrong type
            message = f"{type(exc).__name__}: {exc}"
            assert "does not exist" in message, f"{block.where}: tpo {' '.join(args)}: {message}"
