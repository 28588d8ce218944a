"""``tpo eval --reward math``: MATH-500 as published, scored by the verifier against each
row's reference (its ``answer``), alone or summed with a reward model; a row without a
reference is an error naming its line before any model call."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from .conftest import invoke, policy_calls, read_jsonl, write_jsonl

pytest.importorskip("math_verify")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "benchmarks"
MATH_POLICY = "testsupport.fake_backends:math_policy"


def run_math(cli: CliRunner, data: Path, out: Path, *args: str):  # noqa: ANN201
    return invoke(
        cli,
        ["eval", str(data), "-o", str(out), "-n", "2", "-d", "1", "--policy-factory", MATH_POLICY,
         "--reward", "math", *args],
    )  # fmt: skip


@pytest.fixture
def verifier_env(fake_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Fake backends without the fake reward model: the verifier alone scores."""
    monkeypatch.delenv("TPO_POLICY_FACTORY")
    monkeypatch.delenv("TPO_REWARD_FACTORY")
    return fake_env


def test_math500_is_scored_by_the_verifier_against_its_answers(
    cli: CliRunner, verifier_env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "results.jsonl"
    result = run_math(cli, FIXTURES / "math500.jsonl", out, "--compare", "tpo,bon")
    assert result.exit_code == 0, result.output
    lines = read_jsonl(out)
    assert {(line["reference"], line["method"]) for line in lines} == {
        ("\\frac{5}{6}", "tpo"), ("\\frac{5}{6}", "bon"), ("4", "tpo"), ("4", "bon"),
    }  # fmt: skip
    assert all(line["score"] == 1.0 for line in lines)
    by_reference = {line["reference"]: line["response"] for line in lines}
    assert "dfrac{5}{6}" in by_reference["\\frac{5}{6}"] and "boxed{4}" in by_reference["4"]
    assert all(set(line["best_scores"]) <= {0.0, 1.0} for line in lines)
    kinds = {call["kind"] for call in policy_calls(Path(verifier_env["TPO_FAKE_LOG"]))}
    assert {"sample", "update"} <= kinds  # the log the no-call check below reads is written


def test_the_verifier_is_summed_with_a_reward_model_by_the_weights(
    cli: CliRunner, verifier_env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "results.jsonl"
    weights = ["--reward-factory", "testsupport.fake_backends:reward", "--reward-weights", "1,100"]
    result = run_math(cli, FIXTURES / "math500.jsonl", out, *weights)
    assert result.exit_code == 0, result.output
    for line in read_jsonl(out):
        words = len(line["response"].split())
        assert line["score"] == words + 100.0  # the right answer, ranked first by the verifier


def test_a_row_without_a_reference_is_an_error_naming_its_line_before_any_model_call(
    cli: CliRunner, verifier_env: dict[str, str], tmp_path: Path
) -> None:
    data = write_jsonl(
        tmp_path / "data.jsonl",
        [{"prompt": "1+1?", "reference": "2"}, {"prompt": "2+2?"}],
    )
    out = tmp_path / "results.jsonl"
    result = run_math(cli, data, out)
    assert result.exit_code != 0
    assert "data.jsonl: line 2" in result.output and "'reference' missing" in result.output
    assert not out.exists() or out.read_text() == ""
    assert policy_calls(Path(verifier_env["TPO_FAKE_LOG"])) == []
