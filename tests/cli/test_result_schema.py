"""One schema for a result line (``ResultLine``): ``tpo eval`` checks what it writes against
it, and ``tpo eval`` (resuming), ``tpo report`` and ``tpo export`` read lines through it, so a
malformed line is one error naming the file, the line number and the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from langgraph_tpo.cli.results import ResultLine, ResultsError, ResultsWriter, read_results

from .conftest import invoke, write_jsonl

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "results"
# what every line `tpo eval` writes carries (besides the data's own fields)
WRITTEN = set(ResultLine.model_fields) - {"messages", "server_requests"}


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.jsonl")), ids=lambda p: p.name)
def test_every_results_fixture_is_read_through_the_schema(path: Path) -> None:
    raw = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    lines = read_results(path).lines
    assert len(lines) == len(raw) > 0
    for line, given in zip(lines, raw, strict=True):
        assert line.present() == given  # nothing lost, nothing added, values unchanged
        assert line.method == given["method"] and line.score == given["score"]


def test_tpo_eval_writes_lines_with_every_field_of_the_schema(
    cli: CliRunner, fake_env: dict[str, str], tmp_path: Path
) -> None:
    data = write_jsonl(
        tmp_path / "d.jsonl",
        [{"id": 1, "prompt": "one?", "subject": "algebra"}, {"prompt": "two?"}],
    )
    out = tmp_path / "r.jsonl"
    args = ["eval", str(data), "-o", str(out), "-n", "2", "-d", "1", "--compare", "tpo,bon"]
    assert invoke(cli, args).exit_code == 0
    lines = read_results(out).lines
    assert len(lines) == 4
    for line in lines:
        assert set(line.model_fields_set) >= WRITTEN, WRITTEN - line.model_fields_set
        assert line.usage is not None and line.usage.generations
        assert line.timings is not None and line.timings.wall_s is not None
    subjects = sorted((line.prompt, line.method, line.value("subject")) for line in lines)
    assert [s for _, _, s in subjects] == ["algebra", "algebra", None, None]
    assert {line.id_from for line in lines} == {"data", "prompt"}


@pytest.mark.parametrize(
    ("change", "field", "got"),
    [
        ({"score": "0.5"}, "score", "'0.5'"),
        ({"best_scores": [0.5, "high"]}, "best_scores.1", "'high'"),
        ({"usage": {"requests": True}}, "usage.requests", "True"),
        ({"id_from": "guess"}, "id_from", "'guess'"),
        ({"prompt": None}, "prompt", "None"),
    ],
)
def test_a_malformed_line_is_an_error_naming_file_line_and_field(
    tmp_path: Path, change: dict, field: str, got: str
) -> None:
    lines = [json.loads(x) for x in (FIXTURES / "math500_tpo_bon.jsonl").read_text().splitlines()]
    lines[2].update(change)
    path = write_jsonl(tmp_path / "r.jsonl", lines)
    with pytest.raises(ResultsError) as caught:
        read_results(path)
    assert str(caught.value).startswith(f"{path}: line 3: field '{field}': ")
    assert str(caught.value).endswith(f"got {got}")


def test_a_line_without_its_method_is_named_by_report_and_export(
    cli: CliRunner, tmp_path: Path
) -> None:
    lines = [json.loads(x) for x in (FIXTURES / "math500_tpo_bon.jsonl").read_text().splitlines()]
    del lines[4]["method"]
    path = write_jsonl(tmp_path / "r.jsonl", lines)
    for args in (["report", str(path), "-o", str(tmp_path / "rep")], ["export", str(path),
                 "--to", "jsonl", "-o", str(tmp_path / "exp")]):  # fmt: skip
        result = invoke(cli, args)
        assert result.exit_code == 1
        assert f"{path}: line 5: field 'method': Field required" in result.stderr
        assert result.stderr.count("\n") == 1


def test_a_complete_but_malformed_last_line_is_an_error_not_a_partial_line(
    tmp_path: Path,
) -> None:
    """Only a last line that is not JSON yet may be cut off by a resume; a whole JSON line
    that breaks the schema is never dropped in silence."""
    path = tmp_path / "r.jsonl"
    path.write_text('{"method": "tpo", "prompt": "p", "score": 1.0}\n{"method": "tpo"}')
    with pytest.raises(ResultsError, match=r"line 2: field 'prompt': Field required"):
        read_results(path)


def test_the_writer_refuses_a_malformed_line_and_keeps_the_bytes_of_a_good_one(
    tmp_path: Path,
) -> None:
    path = tmp_path / "r.jsonl"
    good = {"key": "tpo/id/1", "prompt": "p", "subject": "é", "method": "tpo", "score": 1}
    writer = ResultsWriter(path)
    try:
        with pytest.raises(ResultsError, match="field 'score'"):
            writer.write({**good, "score": "high"})
        assert path.read_bytes() == b""  # nothing written
        writer.write(good)
    finally:
        writer.close()
    assert path.read_bytes() == (json.dumps(good, ensure_ascii=False) + "\n").encode()
