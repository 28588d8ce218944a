"""The standard suites of the in-process VLLMChatModel (``vllm_inprocess_standard.py``),
run by the python of the langgraph-tpo + vLLM venv; its JUnit report is read here."""

from __future__ import annotations

import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from testsupport import build_smollm2_hf_dir
from testsupport.servers import DEFAULT_ENV
from testsupport.vllm_env import REPO_ROOT, ensure_tpo_vllm_venv

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SUITE = Path(__file__).with_name("vllm_inprocess_standard.py")
TIMEOUT_S = 1800
# The reasons the suites give when a feature is declared missing (features.py), or for
# what the suite itself leaves out by default (VCR cassettes, env-var init, serialization).
DECLARED_SKIPS = (
    "tool call", "tool choice", "structured output", "json mode", "PDF", "audio", "image",
    "Anthropic", "Model override", "VCR", "init_from_env_params", "not serializable",
)  # fmt: skip


def run_suite(report: Path) -> subprocess.CompletedProcess[str]:
    python = ensure_tpo_vllm_venv()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(DEFAULT_ENV, TPO_STANDARD_VLLM_MODEL=str(build_smollm2_hf_dir()))
    cmd = [
        str(python), "-m", "pytest", str(SUITE), "-q", "-p", "no:cacheprovider",
        f"--junitxml={report}", "-o", "junit_family=xunit2",
    ]  # fmt: skip
    return subprocess.run(
        cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S
    )


def outcomes(report: Path) -> dict[str, list[tuple[str, str]]]:
    """Per outcome (passed, skipped, failed), the (test, message) pairs of the report."""
    found: dict[str, list[tuple[str, str]]] = {"passed": [], "skipped": [], "failed": []}
    for case in ET.parse(report).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        marks = [child for child in case if child.tag in ("skipped", "failure", "error")]
        if not marks:
            found["passed"].append((name, ""))
        elif marks[0].tag == "skipped":
            found["skipped"].append((name, marks[0].get("message") or ""))
        else:
            found["failed"].append((name, marks[0].get("message") or ""))
    return found


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[str, str]]]:
    report = tmp_path_factory.mktemp("vllm-standard") / "report.xml"
    proc = run_suite(report)
    if not report.exists():
        pytest.fail(f"the suite wrote no report (exit {proc.returncode}):\n{proc.stderr[-6000:]}")
    found = outcomes(report)
    print({k: len(v) for k, v in found.items()})  # shown with -s: the counts per outcome
    return {**found, "output": [("stdout", proc.stdout[-8000:])]}


def test_the_standard_suites_pass_on_in_process_vllm(suite: dict) -> None:
    assert not suite["failed"], (suite["failed"], suite["output"])
    names = " ".join(name for name, _ in suite["passed"])
    for test in ("test_stream", "test_astream", "test_stop_sequence", "test_standard_params"):
        assert test in names
    assert len(suite["passed"]) >= 25  # unit and integration, as for TransformersChatModel


def test_every_skip_is_a_declared_feature(suite: dict) -> None:
    undeclared = [s for s in suite["skipped"] if not any(r in s[1] for r in DECLARED_SKIPS)]
    assert not undeclared
