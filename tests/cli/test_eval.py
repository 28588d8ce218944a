"""``tpo eval`` on fake backends: data formats, malformed data, results lines, resume,
``--compare`` budgets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from langgraph_tpo.cli.data import load_prompts
from langgraph_tpo.cli.results import ResultsError, ResultsWriter, read_results

from .conftest import (
    assert_refused,
    invoke,
    policy_calls,
    prompt_list,
    prompts,
    read_jsonl,
    refusals,
    write_jsonl,
)


def run_eval(cli: CliRunner, data: Path, out: Path, *args: str):  # noqa: ANN201
    return invoke(cli, ["eval", str(data), "-o", str(out), "-n", "2", "-d", "1", *args])


def test_formats_json_list_jsonl_and_csv(tmp_path: Path) -> None:
    listed = tmp_path / "sample.json"
    listed.write_text(json.dumps(["first\nprompt", "second"], indent=4))
    records = write_jsonl(
        tmp_path / "d.jsonl",
        [{"prompt": "a", "id": 7}, {"query": "b"}, {"instruction": "c", "id": "x"}],
    )
    table = tmp_path / "d.csv"
    table.write_text('id,instruction\n1,"multi\nline"\n2,plain\n')
    assert [(r.line, r.prompt) for r in load_prompts(listed)] == [
        (2, "first\nprompt"),
        (3, "second"),
    ]
    assert [(r.prompt, r.id) for r in load_prompts(records)] == [("a", 7), ("b", None), ("c", "x")]
    assert [(r.line, r.prompt, r.id) for r in load_prompts(table)] == [
        (2, "multi\nline", "1"),
        (4, "plain", "2"),
    ]


@pytest.mark.parametrize(
    "name,text,where",
    [
        ("bad.jsonl", '{"prompt": "a"}\n{"prompt": "b"}\n{"prompt": "c",\n', ["line 3", "JSON"]),
        ("missing.jsonl", '{"prompt": "a"}\n{"text": "b"}\n', ["line 2", "field 'prompt'"]),
        ("empty.jsonl", '{"prompt": "a"}\n\n{"prompt": "  "}\n', ["line 3", "field 'prompt'"]),
        ("badid.jsonl", '{"prompt": "a", "id": [1]}\n', ["line 1", "field 'id'"]),
        ("dupid.jsonl", '{"prompt": "a", "id": 1}\n{"prompt": "b", "id": 1}\n', ["line 2", "'id'"]),
        ("nocol.csv", "id,text\n1,hello\n", ["line 1", "'prompt'", "column"]),
        ("emptycell.csv", "id,prompt\n1,hello\n2,\n", ["line 3", "field 'prompt'"]),
        ("list.json", '[\n  "a",\n  "b",\n  42\n]\n', ["line 4", "item 3"]),
        ("broken.json", '[\n  "a",\n  "b\n]\n', ["line 3", "JSON"]),
    ],
)
def test_malformed_data_stops_before_any_model_work(
    cli: CliRunner, fake_env: dict[str, str], tmp_path: Path, name: str, text: str, where: list[str]
) -> None:
    data = tmp_path / name
    data.write_text(text)
    out = tmp_path / "results.jsonl"
    result = run_eval(cli, data, out)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert all(part in result.stderr for part in where), result.stderr
    assert not out.exists()
    assert policy_calls(Path(fake_env["TPO_FAKE_LOG"])) == []


def test_results_lines_record_everything(
    cli: CliRunner, fake_env: dict[str, str], tmp_path: Path
) -> None:
    data = write_jsonl(
        tmp_path / "d.jsonl", [{"prompt": p, "id": i} for i, p in enumerate(prompts(3))]
    )
    out = tmp_path / "results.jsonl"
    result = run_eval(cli, data, out, "--seed", "3")
    assert result.exit_code == 0, result.output
    lines = read_jsonl(out)
    assert sorted(line["id"] for line in lines) == [0, 1, 2]
    line = lines[0]
    assert line["method"] == "tpo" and line["prompt"] == prompts(3)[line["id"]]
    assert line["score"] == max(line["best_scores"]) and len(line["best_scores"]) == 2
    assert line["initial_best"] == line["best_scores"][0] and len(line["mean_scores"]) == 2
    assert line["stop_reason"] == "max_iterations" and line["iterations"] == 1
    assert line["timings"]["wall_s"] > 0 and set(line["timings"]["nodes_s"]) >= {"sample", "update"}
    assert line["usage"]["generations"] == 2 + 1 * (2 + 2) and line["usage"]["total_tokens"] > 0
    assert line["config"]["num_samples"] == 2 and line["config"]["seed"] == 3
    assert "api_key" not in line["backend"]
    assert "done: 3 of 3 results" in result.stderr


def test_compare_runs_bon_at_the_same_sample_budget(
    cli: CliRunner, fake_env: dict[str, str], tmp_path: Path
) -> None:
    data = prompt_list(tmp_path / "d.json", 3)
    out = tmp_path / "results.jsonl"
    args = ["eval", str(data), "-o", str(out), "-n", "3", "-d", "2", "--compare", "tpo,bon"]
    result = invoke(cli, args)
    assert result.exit_code == 0, result.output
    lines = read_jsonl(out)
    by_method = {m: [x for x in lines if x["method"] == m] for m in ("tpo", "bon")}
    assert len(by_method["tpo"]) == len(by_method["bon"]) == 3
    for line in by_method["bon"]:
        assert line["config"]["num_samples"] == 3 * (2 + 1) and line["config"]["mode"] == "bon"
        assert line["usage"]["generations"] == 9 and line["stop_reason"] == "bon"
    for line in by_method["tpo"]:
        assert line["config"]["num_samples"] == 3 and line["config"]["mode"] == "tpo"
        assert line["usage"]["generations"] == 3 + 2 * (2 + 3)


@refusals(
    (["--compare", "tpo,best"], "unknown method(s) 'best'"),
    (["--compare", "tpo,bon", "--mode", "tpo"], "--mode and --compare cannot be combined"),
)
def test_bad_compare_is_one_red_line(
    cli: CliRunner, tmp_path: Path, args: list[str], message: str
) -> None:
    """Refused while the arguments are read: no backend is configured here at all."""
    data = prompt_list(tmp_path / "d.json", 2)
    result = run_eval(cli, data, tmp_path / "r.jsonl", *args)
    assert_refused(result, message)


def test_rerun_skips_finished_prompts_and_drops_a_truncated_last_line(
    cli: CliRunner, fake_env: dict[str, str], tmp_path: Path
) -> None:
    data = prompt_list(tmp_path / "d.json", 6)
    out = tmp_path / "results.jsonl"
    assert run_eval(cli, data, out, "--limit", "4").exit_code == 0
    first = read_jsonl(out)
    with out.open("a") as f:  # a crash mid-write would leave this
        f.write('{"key": "tpo/sha256/0", "prompt": "half a li')
    log = Path(fake_env["TPO_FAKE_LOG"])
    log.unlink()
    result = run_eval(cli, data, out)
    assert result.exit_code == 0, result.output
    assert "skipped 4 results" in result.stderr and "truncated last line" in result.stderr
    lines = read_jsonl(out)
    assert lines[:4] == first and len(lines) == 6
    assert sorted(x["prompt"] for x in lines) == sorted(prompts(6))
    asked = {c["query"] for c in policy_calls(log) if c["kind"] == "sample"}
    assert asked == set(prompts(6)[4:])

    log.unlink()
    result = run_eval(cli, data, out)
    assert result.exit_code == 0 and "all 6 results already in" in result.stderr
    assert not log.exists()  # nothing to do: no model work at all


def test_ids_match_across_reruns_even_when_text_changes(
    cli: CliRunner, fake_env: dict[str, str], tmp_path: Path
) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", [{"id": "a", "prompt": "one"}])
    out = tmp_path / "results.jsonl"
    assert run_eval(cli, data, out).exit_code == 0
    write_jsonl(data, [{"id": "a", "prompt": "one, edited"}, {"id": "b", "prompt": "two"}])
    result = run_eval(cli, data, out)
    assert "skipped 1 results" in result.stderr
    assert [x["id"] for x in read_jsonl(out)] == ["a", "b"]


def test_every_result_has_a_stable_id_from_the_data_or_the_prompt(
    cli: CliRunner, fake_env: dict[str, str], tmp_path: Path
) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "one"}, {"prompt": "two", "id": 5}])
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    assert run_eval(cli, data, first, "--compare", "tpo,bon").exit_code == 0
    assert run_eval(cli, data, second).exit_code == 0
    ids = {(x["prompt"], x["method"]): (x["id"], x["id_from"]) for x in read_jsonl(first)}
    derived = ids[("one", "tpo")]
    assert derived[0].startswith("sha256:") and derived[1] == "prompt"
    assert ids[("one", "bon")] == derived  # the same prompt has one id across methods
    assert ids[("two", "tpo")] == (5, "data") == ids[("two", "bon")]
    again = {x["prompt"]: x["id"] for x in read_jsonl(second)}
    assert again == {"one": derived[0], "two": 5}  # and across runs
    result = run_eval(cli, data, second)
    assert "all 2 results already in" in result.stderr  # resume matches derived ids


def test_changed_settings_are_noted_on_resume(
    cli: CliRunner, fake_env: dict[str, str], tmp_path: Path
) -> None:
    data = prompt_list(tmp_path / "d.json", 2)
    out = tmp_path / "results.jsonl"
    assert run_eval(cli, data, out).exit_code == 0
    result = invoke(cli, ["eval", str(data), "-o", str(out), "-n", "3"])
    assert result.exit_code == 0
    assert "2 of them were made with other settings" in result.stderr


def test_results_file_is_locked_while_written(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    writer = ResultsWriter(path)
    try:
        with pytest.raises(ResultsError, match="being written by another tpo eval"):
            ResultsWriter(path)
        writer.write({"method": "tpo", "prompt": "p", "score": 1.0})
    finally:
        writer.close()
    path.write_bytes(path.read_bytes() + b'{"method": "tpo", "pro')
    parsed = read_results(path)
    assert parsed.partial and len(parsed.lines) == 1


def test_concurrency_bounds_the_prompts_in_flight(
    cli: CliRunner, fake_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TPO_FAKE_DELAY", "0.05")
    data = prompt_list(tmp_path / "d.json", 8)
    result = run_eval(cli, data, tmp_path / "r.jsonl", "--concurrency", "3")
    assert result.exit_code == 0, result.output
    in_flight = [c["in_flight"] for c in policy_calls(Path(fake_env["TPO_FAKE_LOG"]))]
    assert max(in_flight) == 3  # each prompt's requests are sequential


def test_failed_prompts_are_reported_not_written_and_retried_on_rerun(
    cli: CliRunner, fake_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = write_jsonl(
        tmp_path / "d.jsonl",
        [
            {"id": i, "prompt": f"BROKEN {p}" if i in (1, 4) else p}
            for i, p in enumerate(prompts(6))
        ],
    )
    out = tmp_path / "r.jsonl"
    monkeypatch.setenv("TPO_FAKE_FAIL", "BROKEN")
    result = run_eval(cli, data, out, "--retries", "0")
    assert result.exit_code == 1
    assert "error: line 2 (id 1) [tpo]: FakeTPOPolicy failed" in result.stderr
    assert "2 prompts failed (not written)" in result.stderr and "rerun" in result.stderr
    assert sorted(x["id"] for x in read_jsonl(out)) == [0, 2, 3, 5]

    result = run_eval(cli, data, out, "--retries", "0", "--max-errors", "1", "-c", "1")
    assert result.exit_code == 1 and "stopped after 1 failed prompts" in result.stderr

    monkeypatch.delenv("TPO_FAKE_FAIL")
    result = run_eval(cli, data, out)
    assert result.exit_code == 0 and "skipped 4 results" in result.stderr
    assert sorted(x["id"] for x in read_jsonl(out)) == list(range(6))


def test_a_prompt_over_the_context_window_fails_alone(
    cli: CliRunner, fake_env: dict[str, str], tmp_path: Path
) -> None:
    rows = [{"id": i, "prompt": p} for i, p in enumerate(prompts(3))]
    rows[1]["prompt"] = "x " * 100_000
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    out = tmp_path / "r.jsonl"
    result = run_eval(cli, data, out, "--context-window", "4096", "--max-tokens", "64")
    assert result.exit_code == 1
    assert "line 2 (id 1)" in result.stderr and "context window of 4096 tokens" in result.stderr
    assert sorted(x["id"] for x in read_jsonl(out)) == [0, 2]
    calls = policy_calls(Path(fake_env["TPO_FAKE_LOG"]))
    assert calls and all("x x x" not in (call["query"] or "") for call in calls)
