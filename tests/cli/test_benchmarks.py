"""``tpo eval`` over the paper's benchmarks as published (fixtures in
tests/fixtures/benchmarks, written from each benchmark's documented schema): detection,
``--format``, ids and category fields in result lines, conversations, resume, and errors
that name the line and field before any model call."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from langgraph_tpo.cli.data import DataError, load_dataset

from .conftest import invoke, policy_calls, read_jsonl, write_jsonl

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "benchmarks"

# file, detected layout, the benchmark's ids, fields kept in the first result line
PUBLISHED = [
    ("alpaca_eval.json", "alpaca_eval", [None, None], {"dataset": "helpful_base"}),
    (
        "arena_hard_v0.1.jsonl",
        "arena_hard_v0.1",
        ["0a1b2c3d4e5f40718293a4b5c6d7e8f9", "1f2e3d4c5b6a47988776655443322110"],
        {"category": "arena-hard-v0.1", "cluster": "Python Programming"},
    ),
    (
        "arena_hard_v2.jsonl",
        "arena_hard_v2",
        ["0001b527ced3428d", "00a38edd42744fa0"],
        {"category": "hard_prompt", "subcategory": "coding"},
    ),
    ("hh_rlhf.jsonl", "hh_rlhf", [None, None], {}),
    ("beavertails.jsonl", "beavertails", [None, None], {"category": ["privacy_violation"]}),
    ("xstest.csv", "xstest", ["1", "2", "26"], {"type": "homonyms", "label": "safe"}),
    (
        "math500.jsonl",
        "math500",
        ["test/prealgebra/1.json", "test/algebra/2.json"],
        {"subject": "Prealgebra", "level": 1, "reference": "\\frac{5}{6}"},
    ),
    ("chat.jsonl", "chat", ["c1", "c2"], {"category": "travel"}),
]


def run_eval(cli: CliRunner, data: Path, out: Path, *args: str):  # noqa: ANN201
    return invoke(cli, ["eval", str(data), "-o", str(out), "-n", "2", "-d", "1", *args])


@pytest.mark.parametrize("name,layout,ids,fields", PUBLISHED)
def test_published_layouts_are_detected_with_their_ids_and_fields(
    name: str, layout: str, ids: list, fields: dict
) -> None:
    dataset = load_dataset(FIXTURES / name)
    assert dataset.format == layout and dataset.detected
    assert [r.id for r in dataset.records] == ids
    first = dataset.records[0]
    assert first.fields == {"benchmark": layout, **fields}
    assert all(r.prompt.strip() for r in dataset.records)


def test_hh_rlhf_transcripts_become_conversations_ending_with_the_last_human_turn() -> None:
    first, second = load_dataset(FIXTURES / "hh_rlhf.jsonl").records
    assert first.messages == (
        {"role": "user", "content": "What is a good way to learn to cook?"},
        {"role": "assistant", "content": "Start with simple recipes."},
        {"role": "user", "content": "Which ones?"},
    )
    assert first.prompt == "Which ones?"
    # one human turn: a plain prompt, the same input (and result key) as a string prompt
    assert second.messages is None and second.prompt == "How do I keep basil alive indoors?"


@pytest.mark.parametrize("name,layout,ids,fields", PUBLISHED)
def test_eval_runs_each_benchmark_and_resumes(
    cli: CliRunner,
    fake_env: dict[str, str],
    tmp_path: Path,
    name: str,
    layout: str,
    ids: list,
    fields: dict,
) -> None:
    out = tmp_path / "results.jsonl"
    result = run_eval(cli, FIXTURES / name, out)
    assert result.exit_code == 0, result.output
    assert f"as {layout} (detected" in result.stderr
    lines = sorted(read_jsonl(out), key=lambda line: line["line"])
    assert len(lines) == len(ids)
    assert [line["id"] for line in lines if line["id_from"] == "data"] == [i for i in ids if i]
    assert all(line["benchmark"] == layout for line in lines)
    assert {k: lines[0][k] for k in fields} == fields
    again = run_eval(cli, FIXTURES / name, out)
    assert again.exit_code == 0 and f"all {len(ids)} results already in" in again.stderr


def test_conversations_reach_the_graph_and_their_result_lines(
    cli: CliRunner, fake_env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "results.jsonl"
    assert run_eval(cli, FIXTURES / "hh_rlhf.jsonl", out).exit_code == 0
    multi = next(line for line in read_jsonl(out) if "messages" in line)
    assert multi["prompt"] == "Which ones?" and len(multi["messages"]) == 3
    samples = [c["query"] for c in policy_calls(Path(fake_env["TPO_FAKE_LOG"])) if c["query"]]
    assert "Which ones?" in samples


def test_gzipped_jsonl_is_read(tmp_path: Path) -> None:
    packed = tmp_path / "test.jsonl.gz"
    packed.write_bytes(gzip.compress((FIXTURES / "hh_rlhf.jsonl").read_bytes()))
    assert load_dataset(packed).format == "hh_rlhf"


def test_forced_format(tmp_path: Path) -> None:
    # a v2 question also has 'prompt': forced as plain it loses its uid
    dataset = load_dataset(FIXTURES / "arena_hard_v2.jsonl", "plain")
    assert dataset.format == "plain" and not dataset.detected
    assert [r.id for r in dataset.records] == [None, None]


@pytest.mark.parametrize(
    "name,text,args,where",
    [
        (
            "unknown.jsonl",
            '{"question": "a", "topic": "b"}\n',
            [],
            ["line 1", "'question', 'topic'", "arena_hard_v0.1", "math500", "plain ('prompt' or"],
        ),
        (
            "arena.jsonl",
            '{"question_id": "q1", "turns": [{"content": "a"}]}\n'
            '{"question_id": "q2", "turns": [{"text": "b"}]}\n',
            [],
            ["line 2", "field 'turns'", "field 'content'"],
        ),
        (
            "chat.jsonl",
            '{"messages": [{"role": "user", "content": "hi"}]}\n'
            '{"messages": [{"role": "bot", "content": "hi"}]}\n',
            [],
            ["line 2", "field 'messages' item 1", "'role'"],
        ),
        (
            "hh.jsonl",
            '{"chosen": "\\n\\nAssistant: hello", "rejected": "x"}\n',
            [],
            ["line 1", "field 'chosen'", "no user turn"],
        ),
        (
            "math.jsonl",
            '{"problem": "1+1?", "answer": "2"}\n{"problem": "2+2?"}\n',
            [],
            ["line 2", "field 'answer' missing"],
        ),
        (
            "xs.csv",
            "id,prompt,type,label\n1,hi,homonyms,safe\n",
            ["--format", "math500"],
            ["line 1", "'problem', 'answer'"],
        ),  # fmt: skip
        ("any.jsonl", '{"prompt": "a"}\n', ["--format", "nope"], ["unknown format 'nope'"]),
    ],
)
def test_bad_benchmark_files_stop_before_any_model_call(
    cli: CliRunner,
    fake_env: dict[str, str],
    tmp_path: Path,
    name: str,
    text: str,
    args: list[str],
    where: list[str],
) -> None:
    data = tmp_path / name
    data.write_text(text)
    out = tmp_path / "results.jsonl"
    result = run_eval(cli, data, out, *args)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: "), result.stderr
    assert all(part in result.stderr for part in where), result.stderr
    assert not out.exists()
    assert policy_calls(Path(fake_env["TPO_FAKE_LOG"])) == []


def test_parquet_without_the_extra_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # as if not installed
    table = tmp_path / "test-00000-of-00001.parquet"
    table.write_bytes(b"PAR1")
    with pytest.raises(DataError, match=r"langgraph-tpo\[datasets\]"):
        load_dataset(table)


def test_parquet_and_save_to_disk_through_datasets(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")  # the optional 'datasets' extra
    rows = [line for line in (FIXTURES / "math500.jsonl").read_text().splitlines()]
    source = write_jsonl(tmp_path / "m.jsonl", [__import__("json").loads(r) for r in rows])
    table = datasets.Dataset.from_json(str(source))
    table.to_parquet(str(tmp_path / "test.parquet"))
    table.save_to_disk(str(tmp_path / "saved"))
    for path in (tmp_path / "test.parquet", tmp_path / "saved"):
        dataset = load_dataset(path)
        assert dataset.format == "math500"
        assert [r.id for r in dataset.records] == ["test/prealgebra/1.json", "test/algebra/2.json"]
        assert dataset.records[0].fields["reference"] == "\\frac{5}{6}"
