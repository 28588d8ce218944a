"""``tpo export``: results of ``tpo eval`` on the benchmark fixtures, written in AlpacaEval's,
Arena-Hard's (v2.0 and v0.1) and a plain layout, and read back the way each evaluator reads
them (every field its repository documents; see langgraph_tpo/cli/export.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from .conftest import assert_refused, invoke, read_jsonl, refusals
from .test_benchmarks import FIXTURES


def evaluated(cli: CliRunner, tmp_path: Path, fixture: str) -> tuple[Path, list[dict[str, Any]]]:
    """Results of tpo and budget-matched bon over a fixture."""
    out = tmp_path / "results.jsonl"
    args = ["eval", str(FIXTURES / fixture), "-o", str(out), "-n", "2", "-d", "1"]
    result = invoke(cli, [*args, "--compare", "tpo,bon"])
    assert result.exit_code == 0, result.output
    return out, read_jsonl(out)


def export(cli: CliRunner, results: Path, *args: str):  # noqa: ANN201
    return invoke(cli, ["export", str(results), *args])


def exported(
    cli: CliRunner, tmp_path: Path, fixture: str, *args: str, says: str = ""
) -> list[dict[str, Any]]:
    """``tpo eval`` over ``fixture``, then ``tpo export RESULTS ARGS -o tmp_path``, which must
    succeed and say ``says``; the result lines."""
    results, lines = evaluated(cli, tmp_path, fixture)
    result = export(cli, results, *args, "-o", str(tmp_path))
    assert result.exit_code == 0 and says in result.stderr, result.output
    return lines


def by_method(lines: list[dict[str, Any]], method: str) -> dict[Any, dict[str, Any]]:
    return {line["id"]: line for line in lines if line["method"] == method}


def test_alpaca_eval_model_outputs(
    cli: CliRunner, fake_env: dict[str, str], tmp_path: Path
) -> None:
    lines = exported(cli, tmp_path, "alpaca_eval.json", "--to", "alpaca_eval", "--name", "my-model")
    questions = json.loads((FIXTURES / "alpaca_eval.json").read_text())
    for method in ("tpo", "bon"):
        outputs = json.loads((tmp_path / f"my-model-{method}" / "model_outputs.json").read_text())
        assert isinstance(outputs, list) and len(outputs) == len(questions)
        final = {line["prompt"]: line["response"] for line in by_method(lines, method).values()}
        for output in outputs:
            assert set(output) == {"instruction", "output", "generator", "dataset"}
            assert output["generator"] == f"my-model-{method}"
            assert output["output"] == final[output["instruction"]]
        # AlpacaEval matches model outputs to its evaluation set by instruction (and dataset)
        assert sorted((o["instruction"], o["dataset"]) for o in outputs) == sorted(
            (q["instruction"], q["dataset"]) for q in questions
        )


def test_arena_hard_v2_model_answers(
    cli: CliRunner, fake_env: dict[str, str], tmp_path: Path
) -> None:
    args = ("--to", "arena_hard", "--method", "tpo")
    lines = exported(cli, tmp_path, "arena_hard_v2.jsonl", *args, says="Arena-Hard v2.0")
    files = list((tmp_path / "model_answer").glob("*.jsonl"))
    assert [f.name for f in files] == ["results-tpo.jsonl"]
    answers = {a["uid"]: a for a in read_jsonl(files[0])}  # arena-hard keys answers by uid
    questions = [json.loads(q) for q in (FIXTURES / "arena_hard_v2.jsonl").read_text().splitlines()]
    final = by_method(lines, "tpo")
    for question in questions:
        answer = answers[question["uid"]]
        assert set(answer) == {"uid", "ans_id", "model", "messages", "tstamp", "metadata"}
        assert answer["model"] == "results-tpo" and isinstance(answer["ans_id"], str)
        assert answer["messages"][0] == {"role": "user", "content": question["prompt"]}
        # gen_judgment.py reads the answer as messages[-1]["content"]["answer"]
        assert answer["messages"][-1]["role"] == "assistant"
        assert answer["messages"][-1]["content"]["answer"] == final[question["uid"]]["response"]
        assert isinstance(answer["tstamp"], float)
        metadata = answer["metadata"]
        assert metadata["token_len"] > 0
        assert set(metadata["header_count"]) == {f"h{i}" for i in range(1, 7)}
        assert set(metadata["list_count"]) == {"ordered", "unordered"}
        assert set(metadata["bold_count"]) == {"**", "__"}


def test_arena_hard_v01_model_answers(
    cli: CliRunner, fake_env: dict[str, str], tmp_path: Path
) -> None:
    args = ("--to", "arena_hard", "--name", "tpo-model")
    lines = exported(cli, tmp_path, "arena_hard_v0.1.jsonl", *args, says="Arena-Hard v0.1")
    for method in ("tpo", "bon"):
        path = tmp_path / "model_answer" / f"tpo-model-{method}.jsonl"
        answers = {a["question_id"]: a for a in read_jsonl(path)}  # v0.1 keys by question_id
        final = by_method(lines, method)
        assert set(answers) == set(final)
        for question_id, answer in answers.items():
            assert set(answer) == {"question_id", "answer_id", "model_id", "choices", "tstamp"}
            assert answer["model_id"] == f"tpo-model-{method}"
            choice = answer["choices"][0]  # v0.1's gen_judgment.py reads choices[0]["turns"]
            assert choice["index"] == 0 and len(choice["turns"]) == 1
            assert choice["turns"][0]["content"] == final[question_id]["response"]
            assert choice["turns"][0]["token_len"] > 0


def test_multi_turn_conversations_are_kept_in_arena_answers(
    cli: CliRunner, fake_env: dict[str, str], tmp_path: Path
) -> None:
    results, _ = evaluated(cli, tmp_path, "hh_rlhf.jsonl")
    assert export(cli, results, "--to", "arena_hard", "-o", str(tmp_path)).exit_code == 0
    answers = read_jsonl(tmp_path / "model_answer" / "results-tpo.jsonl")
    roles = sorted([m["role"] for m in a["messages"]] for a in answers)
    assert roles == [["user", "assistant"], ["user", "assistant", "user", "assistant"]]


def test_plain_jsonl_has_the_best_response_ever_scored(
    cli: CliRunner, fake_env: dict[str, str], tmp_path: Path
) -> None:
    lines = exported(cli, tmp_path, "math500.jsonl", "--to", "jsonl")
    for method in ("tpo", "bon"):
        final = by_method(lines, method)
        for record in read_jsonl(tmp_path / f"results-{method}.jsonl"):
            assert set(record) == {"id", "prompt", "response", "score"}
            line = final[record["id"]]
            assert record["response"] == line["response"] and record["score"] == line["score"]
            if method == "tpo":
                assert record["score"] == max(line["best_scores"])


@refusals(
    (["--to", "mtbench"], "--to: unknown format 'mtbench'"),
    (["--to", "jsonl", "--method", "revision"], "no results for 'revision'"),
)
def test_bad_export_requests_are_one_line(
    cli: CliRunner, fake_env: dict[str, str], tmp_path: Path, args: list[str], message: str
) -> None:
    results, _ = evaluated(cli, tmp_path, "xstest.csv")
    result = export(cli, results, *args, "-o", str(tmp_path / "out"))
    assert_refused(result, message)
    assert not (tmp_path / "out").exists()


def test_results_without_a_response_are_named(cli: CliRunner, tmp_path: Path) -> None:
    results = tmp_path / "r.jsonl"
    results.write_text(json.dumps({"key": "tpo/id/1", "method": "tpo", "prompt": "p"}) + "\n")
    result = export(cli, results, "--to", "jsonl", "-o", str(tmp_path))
    assert result.exit_code == 1
    assert "result 'tpo/id/1': field 'response'" in result.stderr, result.stderr
