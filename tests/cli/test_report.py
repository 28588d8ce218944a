"""``tpo report``: the reward curve (one line per method) and the summary numbers."""

from __future__ import annotations

import json
from pathlib import Path
from statistics import fmean, pstdev
from typing import Any

import pytest
from PIL import Image
from typer.testing import CliRunner

from langgraph_tpo.cli.report import by_method, load_lines, make_curves, plot_curves

from .conftest import invoke, prompt_list, read_jsonl


@pytest.fixture
def results(cli: CliRunner, fake_env: dict[str, str], tmp_path: Path) -> Path:
    """tpo vs budget-matched bon on 8 prompts, D=2, with a partial line being written."""
    data = prompt_list(tmp_path / "d.json", 8)
    out = tmp_path / "results.jsonl"
    args = ["eval", str(data), "-o", str(out), "-n", "3", "-d", "2", "--compare", "tpo,bon"]
    assert invoke(cli, args).exit_code == 0
    with out.open("a") as f:
        f.write('{"method": "tpo", "prompt": "still being wri')
    return out


def complete_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.endswith("}")]


def expected(lines: list[dict[str, Any]], method: str) -> dict[str, float]:
    """The summary numbers, computed independently from the JSONL."""
    mine = [x for x in lines if x["method"] == method]
    return {
        "prompts": len(mine),
        "mean_final_score": fmean(x["score"] for x in mine),
        "mean_gain": fmean(x["score"] - x["best_scores"][0] for x in mine),
        "win_rate": fmean(x["score"] > x["best_scores"][0] for x in mine),
        "tokens_per_prompt": fmean(x["usage"]["total_tokens"] for x in mine),
        "generations_per_prompt": fmean(x["usage"]["generations"] for x in mine),
        "wall_s_per_prompt": fmean(x["timings"]["wall_s"] for x in mine),
    }


def test_report_writes_curve_and_summary_matching_the_results(
    cli: CliRunner, results: Path, tmp_path: Path
) -> None:
    out_dir = tmp_path / "report"
    result = invoke(cli, ["report", str(results), "-o", str(out_dir)])
    assert result.exit_code == 0, result.output
    lines = complete_lines(results)
    assert len(lines) == 16

    with Image.open(out_dir / "reward_curve.png") as image:
        assert image.format == "PNG" and image.size[0] > 400

    curve = json.loads((out_dir / "reward_curve.json").read_text())
    assert curve["band"] == "std" and set(curve["series"]) == {"tpo", "bon"}
    tpo, bon = curve["series"]["tpo"], curve["series"]["bon"]
    tpo_lines = [x for x in lines if x["method"] == "tpo"]
    for k in range(3):  # mean best-so-far per iteration, band = mean ± std
        column = [x["best_scores"][k] for x in tpo_lines]
        assert tpo["mean"][k] == pytest.approx(fmean(column))
        assert tpo["high"][k] == pytest.approx(fmean(column) + pstdev(column))
    bon_mean = fmean(x["score"] for x in lines if x["method"] == "bon")
    assert bon["flat"] and bon["iterations"] == [0, 1, 2] and bon["mean"] == [bon_mean] * 3
    assert bon["samples"] == 9

    summary = json.loads((out_dir / "summary.json").read_text())
    markdown = (out_dir / "summary.md").read_text()
    for method in ("tpo", "bon"):
        want = expected(lines, method)
        got = summary["methods"][method]
        for key, value in want.items():
            assert got[key] == pytest.approx(value), (method, key)
        row = f"| {method} | {want['prompts']} | {want['mean_final_score']:.4f} "
        assert row + f"| {want['mean_gain']:+.4f} | {want['win_rate']:.1%} |" in markdown
    assert summary["methods"]["bon"]["mean_gain"] == summary["methods"]["bon"]["win_rate"] == 0
    pair = summary["head_to_head"][0]
    assert (pair["a"], pair["b"], pair["prompts"]) == ("tpo", "bon", 8)
    assert pair["a_better"] + pair["tie"] + pair["b_better"] == 8
    assert "![reward curve](reward_curve.png)" in markdown


def test_figure_has_one_line_per_method(results: Path) -> None:
    lines, left_out = load_lines([results])
    assert left_out == 0 and len(lines) == 16  # the partial last line is not a line
    figure = plot_curves(make_curves(by_method(lines), "iqr"), "iqr")
    (axes,) = figure.axes
    labels = [line.get_label() for line in axes.get_lines()]
    assert len(labels) == 2
    assert labels[0].startswith("tpo") and labels[1].startswith("bon (best-of-9")
    assert "interquartile" in axes.get_title()


def test_report_merges_files_and_skips_duplicates(
    cli: CliRunner, results: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "copy.jsonl"
    copy.write_text("".join(json.dumps(x) + "\n" for x in complete_lines(results)[:3]))
    out_dir = tmp_path / "merged"
    result = invoke(cli, ["report", str(results), str(copy), "-o", str(out_dir), "--band", "iqr"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["left_out"] == 3
    assert summary["methods"]["tpo"]["prompts"] == summary["methods"]["bon"]["prompts"] == 8


def test_report_without_results_is_one_red_line(cli: CliRunner, tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    result = invoke(cli, ["report", str(empty), "-o", str(tmp_path / "r")])
    assert result.exit_code == 1 and result.stderr.startswith("error: no finished results")


def test_results_fixture_is_valid_jsonl_before_the_partial_line(results: Path) -> None:
    text = results.read_text()
    whole = text[: text.rindex("\n") + 1]
    tmp = results.with_suffix(".whole")
    tmp.write_text(whole)
    assert len(read_jsonl(tmp)) == 16
