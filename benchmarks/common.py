"""Shared by the benchmark scripts: tables, JSON output, machine description."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    try:
        cpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next(
            (
                line.split(":", 1)[1].strip()
                for line in cpu.splitlines()
                if line.startswith("Model name")
            ),
            platform.processor(),
        )
    except OSError:
        model = platform.processor()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def tpo_arguments(
    parser: argparse.ArgumentParser, max_tokens: int, num_samples: int = 5, max_iterations: int = 2
) -> None:
    """The TPO settings a benchmark run takes: -n, -d, --max-tokens, --seed (the defaults
    are the arguments)."""
    parser.add_argument("--max-tokens", type=int, default=max_tokens)
    parser.add_argument("-n", "--num-samples", type=int, default=num_samples)
    parser.add_argument("-d", "--max-iterations", type=int, default=max_iterations)
    parser.add_argument("--seed", type=int, default=1234)


def abba_eval_parser(doc: str, rounds: int, rounds_help: str) -> argparse.ArgumentParser:
    """The parser of a benchmark that times ``tpo eval`` runs in ABBA rounds: its
    description (``doc``'s first line), --prompts, --rounds, -c and the TPO settings (3
    samples, 1 iteration, 64 tokens); the caller adds its own."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=rounds, help=rounds_help)
    parser.add_argument("-c", "--concurrency", type=int, default=8)
    tpo_arguments(parser, max_tokens=64, num_samples=3, max_iterations=1)
    return parser


def write_json(name: str, payload: dict[str, Any], out: Path | None = None) -> Path:
    """Write the results (with the machine's description) to ``out`` or
    ``results/NAME.json`` and say where."""
    path = out or RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2))
    print(f"wrote {path}")
    return path


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def _own_tree() -> set[int]:
    import psutil

    me = psutil.Process()
    return {me.pid, *(p.pid for p in me.children(recursive=True))}


def contention() -> dict[str, Any]:
    """What else runs on the machine now: load average and other vLLM servers / pytest runs."""
    import psutil

    own = _own_tree()
    vllm = pytest = 0
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if proc.info["pid"] in own:
            continue
        cmd = " ".join(proc.info["cmdline"] or [])
        if "vllm.entrypoints" in cmd:
            vllm += 1
        elif "pytest" in cmd:
            pytest += 1
    return {"loadavg": [round(x, 2) for x in os.getloadavg()], "other_vllm": vllm, "pytest": pytest}


def _cell(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def markdown_table(columns: list[str], rows: list[list[Any]]) -> str:
    """The table as GitHub markdown (numbers formatted as in :func:`show_table`)."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def show_table(title: str, columns: list[str], rows: list[list[Any]]) -> str:
    """Print a rich table wide enough not to truncate cells; return it as markdown."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*[_cell(v) for v in row])
    Console(width=200).print(table)
    return f"**{title}**\n\n" + markdown_table(columns, rows)


def stop_on_signals() -> None:
    """SIGTERM, SIGHUP and SIGINT raise KeyboardInterrupt, so ``finally`` blocks (which stop
    the vLLM servers a benchmark started) run; SIGINT too, as a background job ignores it."""
    import signal

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, interrupt)


@contextlib.contextmanager
def watched_run() -> Iterator[dict[str, Any]]:
    """A benchmark's main body: signals stop it cleanly (:func:`stop_on_signals`), and the
    dict it yields gets the machine's :func:`contention` before and, at the end, after."""
    stop_on_signals()
    seen = {"before": contention()}
    yield seen
    seen["after"] = contention()
    print(f"contention: before {seen['before']}, after {seen['after']}")
