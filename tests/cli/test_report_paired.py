"""``tpo report``'s paired comparison on a fixture results file (MATH-500 scored by the
verifier, TPO against budget-matched best-of-N): differences, bootstrap intervals,
wins/ties/losses, accuracy, ``--by``; in summary.md, summary.json and on the terminal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from langgraph_tpo.cli.paired import bootstrap_interval

from .conftest import invoke

# tpo finals 1 1 1 0 1 0 (iteration 0: 0 1 0 0 1 0), bon 0 1 0 1 0 0; subjects math x3, code x3
RESULTS = Path(__file__).resolve().parents[1] / "fixtures" / "results" / "math500_tpo_bon.jsonl"


def report(cli: CliRunner, tmp_path: Path, *args: str) -> tuple[str, dict, str]:
    out_dir = tmp_path / "report"
    result = invoke(cli, ["report", str(RESULTS), "-o", str(out_dir), *args])
    assert result.exit_code == 0, result.output
    summary = json.loads((out_dir / "summary.json").read_text())
    return result.output, summary, (out_dir / "summary.md").read_text()


def rows_of(summary: dict, b: str) -> dict[str, dict]:
    return {row["group"]: row for row in summary["paired"] if row["b"] == b}


def test_tpo_is_compared_with_best_of_n_and_with_its_iteration_0(
    cli: CliRunner, tmp_path: Path
) -> None:
    output, summary, markdown = report(cli, tmp_path)
    bon = rows_of(summary, "bon")["all"]
    assert (bon["prompts"], bon["wins"], bon["ties"], bon["losses"]) == (6, 3, 2, 1)
    assert bon["mean_difference"] == pytest.approx(2 / 6)
    assert bon["low"] <= bon["mean_difference"] <= bon["high"] and bon["low"] < bon["high"]
    assert (bon["accuracy_a"], bon["accuracy_b"]) == (pytest.approx(4 / 6), pytest.approx(2 / 6))
    assert bon["budget"] == "equal budget"
    zero = rows_of(summary, "tpo iteration 0")["all"]
    assert (zero["wins"], zero["ties"], zero["losses"]) == (2, 4, 0)
    assert zero["mean_difference"] == pytest.approx(2 / 6)
    assert "## Paired comparison" in markdown
    assert "| tpo | bon | all | 6 | +0.3333 |" in markdown
    assert "66.7% | 33.3% | equal budget" in markdown
    assert "Paired comparison" in output and "tpo vs bon" in output and "3/2/1" in output


def test_by_a_category_field_repeats_each_comparison_per_value(
    cli: CliRunner, tmp_path: Path
) -> None:
    output, summary, markdown = report(cli, tmp_path, "--by", "subject")
    bon = rows_of(summary, "bon")
    assert list(bon) == ["all", "code", "math"] and summary["paired_by"] == "subject"
    assert (bon["math"]["wins"], bon["math"]["ties"], bon["math"]["losses"]) == (2, 1, 0)
    assert bon["math"]["mean_difference"] == pytest.approx(2 / 3)
    assert (bon["code"]["wins"], bon["code"]["ties"], bon["code"]["losses"]) == (1, 1, 1)
    assert bon["code"]["mean_difference"] == 0
    assert "## Paired comparison by subject" in markdown and "| tpo | bon | math | 3 |" in markdown
    assert "math" in output and "code" in output


def test_by_an_unknown_field_is_an_error_naming_it_and_the_fields_there_are(
    cli: CliRunner, tmp_path: Path
) -> None:
    result = invoke(cli, ["report", str(RESULTS), "-o", str(tmp_path / "r"), "--by", "topic"])
    assert result.exit_code != 0
    assert "'topic'" in result.output and "subject" in result.output


def test_bootstrap_interval_is_reproducible_and_brackets_the_mean() -> None:
    diffs = [1.0, 0.0, 1.0, -1.0, 1.0, 0.0, 2.0, 0.5]
    low, high = bootstrap_interval(diffs)
    assert (low, high) == bootstrap_interval(diffs)
    assert low < sum(diffs) / len(diffs) < high
    assert bootstrap_interval([0.5, 0.5]) == (0.5, 0.5)
