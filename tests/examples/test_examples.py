"""The documentation's runnable examples: each file in examples/ runs, and the README or a
page of docs/ shows it as is."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from testsupport.fake_backends import FAKE_FACTORIES, fake_backend_env

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
FAKE = {**os.environ, **fake_backend_env()}


def run_example(name: str, env: dict[str, str] = FAKE) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_the_docs_show_the_example_verbatim(name: str) -> None:
    code = (EXAMPLES / name).read_text().split('"""', 2)[2].strip()  # without the docstring
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    assert any(code in page.read_text() for page in pages), f"docs are out of date for {name}"


def test_lcel_chain_example() -> None:
    lines = run_example("lcel_chain.py").splitlines()
    assert lines[0].startswith("answer:")  # the fake models' best response
    assert lines[1].startswith("['answer:") and lines[1].count("answer:") == 2
    assert lines[-1].startswith("answer:")


def test_subgraph_agent_example() -> None:
    out = run_example("subgraph_agent.py").splitlines()
    assert out[0].startswith("answer:")
    assert "'stop_reason': 'max_iterations'" in out[1] and "'iterations': 1" in out[1]


def test_human_review_example() -> None:
    out = run_example("human_review.py")
    assert "suggestions:" in out and out.rstrip().endswith("max_iterations")


@pytest.mark.slow
def test_studio_client_example(studio_url: str) -> None:
    out = run_example("studio_client.py", {**os.environ, "LANGGRAPH_URL": studio_url})
    assert "max_iterations" in out and "checkpoints" in out


@pytest.mark.integration
def test_openai_client_example(vllm_servers, tmp_path: Path) -> None:
    from tests.serve.helpers import backend_flags, tpo_serve

    args = [*backend_flags(vllm_servers), "-n", "2", "-d", "1", "--max-tokens", "24"]
    with tpo_serve(args, tmp_path, ready_s=120) as server:
        out = run_example("openai_client.py", {**os.environ, "TPO_URL": server.url})
    reply, score = out.strip().rsplit(" ", 1)
    assert reply.strip() and float(score) == float(score)  # a reply and its reward score


@pytest.mark.slow
def test_lcel_chain_example_on_the_embedded_default() -> None:
    env = {k: v for k, v in os.environ.items() if k not in FAKE_FACTORIES}
    out = run_example("lcel_chain.py", env)
    assert len(out.strip().splitlines()) >= 4


def test_custom_prompts_example() -> None:
    out = run_example("custom_prompts.py").splitlines()
    assert out[0].startswith("answer:")  # the fake models' best response
    assert out[1] == "{'tagged': 2}"  # the fake policy wrote between the run's delimiters
    assert out[2] == "max_iterations"
