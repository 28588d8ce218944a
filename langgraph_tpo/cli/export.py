"""``tpo export RESULTS --to alpaca_eval|arena_hard|jsonl``: results as evaluators read them.

The layouts were read in the evaluators' own repositories:

* AlpacaEval (tatsu-lab/alpaca_eval, ``src/alpaca_eval/utils.py``
  ``load_or_convert_to_dataframe`` and ``get_generator_name``): ``model_outputs.json``, a
  JSON list of ``instruction``, ``output``, ``generator``, ``dataset``.
* Arena-Hard (lmarena/arena-hard-auto): one JSONL per model under ``model_answer/``.
  v2.0 (``src/arenahard/gen_answer.py``, ``gen_judgment.py``, which reads
  ``messages[-1]["content"]["answer"]``): ``uid``, ``ans_id``, ``model``, ``messages``,
  ``tstamp``, ``metadata`` (``token_len`` and the markdown counts of style control).
  v0.1 (``data/arena-hard-v0.1/model_answer/*.jsonl`` and ``gen_judgment.py``, which reads
  ``choices[0]["turns"]``): ``question_id``, ``answer_id``, ``model_id``,
  ``choices: [{index, turns: [{content, token_len}]}]``, ``tstamp``.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from langgraph_tpo.cli.console import exit_on_error, note, stderr_console
from langgraph_tpo.cli.results import ResultLine, line_key, read_results
from langgraph_tpo.errors import ConfigError

TARGETS = ("alpaca_eval", "arena_hard", "jsonl")
ARENA_V01 = "arena_hard_v0.1"
_CODE_BLOCK = re.compile(r"```[^`]*```")


class ExportError(ConfigError):
    """A results file cannot be exported; the message names the result and the field."""


def export_command(
    results: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, help="Results JSONL written by tpo eval."),
    ],
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="alpaca_eval (DIR/GENERATOR/model_outputs.json), arena_hard "
            "(DIR/model_answer/GENERATOR.jsonl) or jsonl (DIR/GENERATOR.jsonl: id, prompt, "
            "response, score).",
        ),
    ],
    method: Annotated[
        str | None,
        typer.Option(help="Comma-separated methods to export (e.g. tpo,bon). Default: all."),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="Generator (model) name. With several methods each file gets NAME-METHOD. "
            "Default: the results file's name and the method, e.g. results-tpo.",
        ),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", file_okay=False, help="Directory to write to.")
    ] = Path("."),
) -> None:
    """Write tpo eval results in an evaluator's format: AlpacaEval's model_outputs.json,
    Arena-Hard's model answer JSONL (v2.0; v0.1 when the questions were v0.1), or a plain
    {id, prompt, response, score} JSONL; one file per method.

    The answer exported for each prompt is the result line's final response: the best
    response ever scored during the run (for best-of-N, the best of its samples), not the
    last one generated.
    """
    console = stderr_console()
    with exit_on_error(console, []):
        writer = target_writer(to)
        groups = method_groups(results, method)
        for chosen, lines in groups.items():
            generator = generator_name(results, name, chosen, several=len(groups) > 1)
            path, detail = writer(lines, generator, out)
            note(console, f"{chosen}: {len(lines)} answers of {generator} in {path}{detail}")


def target_writer(to: str) -> Callable[[list[ResultLine], str, Path], tuple[Path, str]]:
    """The function writing the ``--to`` format; a ConfigError names the known ones."""
    writers = {
        "alpaca_eval": write_alpaca_eval,
        "arena_hard": write_arena_hard,
        "jsonl": write_plain,
    }
    if to not in writers:
        raise ExportError(f"--to: unknown format {to!r}; choose {', '.join(TARGETS)}")
    return writers[to]


def method_groups(results: Path, methods: str | None) -> dict[str, list[ResultLine]]:
    """The checked result lines of each method asked for (first line of each key kept)."""
    groups: dict[str, list[ResultLine]] = {}
    seen: set[str] = set()
    for line in read_results(results).lines:
        check_exportable(results, line)
        key = line_key(line)
        if key not in seen:
            seen.add(key)
            groups.setdefault(line.method, []).append(line)
    if not groups:
        raise ExportError(f"{results}: no results to export")
    wanted = [m.strip() for m in (methods or "").split(",") if m.strip()] or list(groups)
    missing = [m for m in wanted if m not in groups]
    if missing:
        raise ExportError(
            f"--method: no results for {', '.join(map(repr, missing))} in {results} "
            f"(it has {', '.join(groups)})"
        )
    return {m: groups[m] for m in wanted}


def check_exportable(results: Path, line: ResultLine) -> None:
    """A result line has a response to export (the schema already holds method, prompt)."""
    if not isinstance(line.response, str):
        where = f"{results}: result {line.key or line.id!r}"
        raise ExportError(f"{where}: field 'response' must be a string, got {line.response!r}")


def generator_name(results: Path, name: str | None, method: str, several: bool) -> str:
    if name is None:
        return f"{results.stem}-{method}"
    return f"{name}-{method}" if several else name


def write_alpaca_eval(lines: list[ResultLine], generator: str, out: Path) -> tuple[Path, str]:
    """``DIR/GENERATOR/model_outputs.json``: what ``alpaca_eval --model_outputs`` reads."""
    outputs = [
        {
            "instruction": line.prompt,
            "output": line.response,
            "generator": generator,
            "dataset": line.value("dataset") or line.value("benchmark") or "tpo",
        }
        for line in lines
    ]
    path = out / generator / "model_outputs.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(outputs, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path, ""


def write_arena_hard(lines: list[ResultLine], generator: str, out: Path) -> tuple[Path, str]:
    """``DIR/model_answer/GENERATOR.jsonl`` in v0.1's layout when every question was v0.1,
    else v2.0's."""
    count_tokens, counted_by = token_counter()
    v01 = all(line.value("benchmark") == ARENA_V01 for line in lines)
    answer = arena_v01_answer if v01 else arena_v2_answer
    records = [answer(line, generator, count_tokens) for line in lines]
    path = out / "model_answer" / f"{generator}.jsonl"
    write_jsonl(path, records)
    return path, f" (Arena-Hard {'v0.1' if v01 else 'v2.0'}; token_len: {counted_by})"


def write_plain(lines: list[ResultLine], generator: str, out: Path) -> tuple[Path, str]:
    """``DIR/GENERATOR.jsonl``: ``id``, ``prompt``, ``response``, ``score`` per prompt."""
    fields = ("id", "prompt", "response", "score")
    path = out / f"{generator}.jsonl"
    write_jsonl(path, [{f: line.value(f) for f in fields} for line in lines])
    return path, ""


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    path.write_text(text, encoding="utf-8")


def arena_v2_answer(
    line: ResultLine, generator: str, count_tokens: Callable[[str], int]
) -> dict[str, Any]:
    """One answer in Arena-Hard v2.0's layout; the conversation ends with the answer."""
    conversation = line.messages or [{"role": "user", "content": line.prompt}]
    response = line.response
    return {
        "uid": str(line.id),
        "ans_id": answer_id(generator, line),
        "model": generator,
        "messages": [*conversation, {"role": "assistant", "content": {"answer": response}}],
        "tstamp": finished_at(line),
        "metadata": {"token_len": count_tokens(response), **markdown_counts(response)},
    }


def arena_v01_answer(
    line: ResultLine, generator: str, count_tokens: Callable[[str], int]
) -> dict[str, Any]:
    """One answer in Arena-Hard v0.1's layout."""
    response = line.response
    turn = {"content": response, "token_len": count_tokens(response)}
    return {
        "question_id": line.id,
        "answer_id": answer_id(generator, line),
        "model_id": generator,
        "choices": [{"index": 0, "turns": [turn]}],
        "tstamp": finished_at(line),
    }


def answer_id(generator: str, line: ResultLine) -> str:
    """A stable answer id: the same on every export of the same result."""
    return hashlib.sha256(f"{generator}\n{line_key(line)}".encode()).hexdigest()[:22]


def finished_at(line: ResultLine) -> float:
    try:
        return datetime.fromisoformat(str(line.finished_at)).timestamp()
    except ValueError:
        return time.time()


def token_counter() -> tuple[Callable[[str], int], str]:
    """Arena-Hard's count (tiktoken's gpt-4o encoding) when its encoding file can be
    loaded, else the number of words (the encoding is downloaded on first use)."""
    try:
        import tiktoken

        encoding = tiktoken.encoding_for_model("gpt-4o")
    except (ImportError, OSError, ValueError, KeyError):
        return (lambda text: len(text.split())), "words (tiktoken's gpt-4o encoding unavailable)"
    return (lambda text: len(encoding.encode(text, disallowed_special=()))), "tiktoken gpt-4o"


def markdown_counts(text: str) -> dict[str, dict[str, int]]:
    """Headers, list items and bold spans outside code blocks (Arena-Hard's style metadata)."""
    prose = _CODE_BLOCK.sub("", text)
    return {
        "header_count": {
            f"h{level}": len(re.findall(rf"^{'#' * level} ", prose, re.MULTILINE))
            for level in range(1, 7)
        },
        "list_count": {
            "ordered": len(re.findall(r"^\s*\d+\. ", prose, re.MULTILINE)),
            "unordered": len(re.findall(r"^\s*[-*+] ", prose, re.MULTILINE)),
        },
        "bold_count": {
            "**": len(re.findall(r"\*\*[^*\n]+\*\*", prose)),
            "__": len(re.findall(r"__[^_\n]+__", prose)),
        },
    }
