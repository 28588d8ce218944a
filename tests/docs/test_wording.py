"""What a user reads in a terminal: help pages without markup, error messages in English."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from langgraph_tpo.cli import app
from langgraph_tpo.errors import ConfigError
from langgraph_tpo.nodes.sample import article, read_conversation

RST = re.compile(r"``|:(class|func|data|meth|mod|attr):`")
COMMANDS = [["run"], ["eval"], ["report"], ["export"], ["serve"], ["prompts", "show"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "tpo")
def test_help_pages_show_no_rst_markup(command: list[str]) -> None:
    done = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "100"})
    assert done.exit_code == 0, done.output
    assert not RST.search(done.output), done.output


@pytest.mark.parametrize("command", [[], ["prompts"], ["prompts", "show"]], ids=str)
def test_command_lists_show_no_markup_at_all(command: list[str]) -> None:
    out = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "100"}).output
    assert "`" not in out, out


def test_prompts_show_help_says_what_it_prints() -> None:
    out = CliRunner().invoke(app, ["prompts", "show", "--help"], env={"COLUMNS": "100"}).output
    assert "Print a built-in prompt set as YAML, the format --prompts FILE reads." in out


@pytest.mark.parametrize(
    ("role", "expected"), [("assistant", "an assistant"), ("system", "a system")]
)
def test_article(role: str, expected: str) -> None:
    assert article(role) == expected


def test_a_conversation_ending_with_the_assistant_says_an_assistant_message() -> None:
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    with pytest.raises(ConfigError, match="got an assistant message$"):
        read_conversation({"messages": messages})
