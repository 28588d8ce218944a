"""``tpo eval DATA --out RESULTS.jsonl``: run TPO (and baselines) over a dataset.

The command and what it shows: DATA read and checked, the work planned, results already in
RESULTS skipped without any model work, the progress bar and the closing message. The runs
themselves are :class:`~langgraph_tpo.cli.eval_runner.EvalRunner`'s.
"""

from __future__ import annotations

import asyncio
import signal
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from langgraph_tpo.backends.plumbing.balancer import Balancer
from langgraph_tpo.cli import options as o
from langgraph_tpo.cli.console import (
    describe_error,
    error_line,
    exit_on_error,
    note,
    stderr_console,
)
from langgraph_tpo.cli.data import FORMAT_NAMES, load_dataset
from langgraph_tpo.cli.eval_checkpoints import DEFAULT, Checkpoints, choose_checkpoints, has_sqlite
from langgraph_tpo.cli.eval_plan import (
    WorkItem,
    config_mismatches,
    method_config,
    parse_methods,
    plan_items,
)
from langgraph_tpo.cli.eval_runner import EvalRunner, Outcome, build_graphs
from langgraph_tpo.cli.models import describe_backends
from langgraph_tpo.cli.results import ResultsWriter, line_key, open_results, read_results
from langgraph_tpo.config import TPOConfig


class RateColumn(ProgressColumn):
    """Prompts per minute (or per second when fast)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if not speed:
            return Text("- /min", style="progress.data.speed")
        rate = f"{speed:.1f}/s" if speed >= 1 else f"{speed * 60:.1f}/min"
        return Text(rate, style="progress.data.speed")


def progress_bar(console: Console) -> Progress:
    """One bar for the dataset: done/total, rate, elapsed and ETA."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
    )


@dataclass
class BarProgress:
    """The runner's progress (:class:`~langgraph_tpo.cli.eval_runner.EvalProgress`) as one
    rich bar for the dataset, a red line per failed item (keys masked) and the requests
    per server in the bar's description."""

    bar: Progress
    secrets: list[str | None]
    balancers: list[Balancer] = field(default_factory=list)
    task: TaskID | None = None

    def started(self, total: int) -> None:
        self.task = self.bar.add_task("tpo eval", total=total)

    def resuming(self, count: int, where: str) -> None:
        note(self.bar.console, f"resuming {count} runs in flight from {where}")

    def failed(self, item: WorkItem, exc: BaseException) -> None:
        where = f"line {item.record.line}" + (
            f" (id {item.record.id})" if item.record.id is not None else ""
        )
        message = f"{where} [{item.method}]: {describe_error(exc)}"
        error_line(self.bar.console, message, self.secrets)

    def advanced(self, outcome: Outcome) -> None:
        failed = f", {outcome.failed} failed" if outcome.failed else ""
        servers = "".join(f"  {servers_summary(b)}" for b in self.balancers)
        if self.task is not None:
            self.bar.update(self.task, advance=1, description=f"tpo eval{failed}{servers}")


def servers_summary(balancer: Balancer) -> str:
    """``policy: :8000 12, :8001 9 (2 failed, set aside)``: requests per server so far."""
    parts = []
    for url, stats in balancer.stats().items():
        notes = [f"{stats['failures']} failed"] if stats["failures"] else []
        if stats["set_aside"]:
            notes.append("set aside")
        extra = f" ({', '.join(notes)})" if notes else ""
        parts.append(f"{url} {stats['requests']}{extra}")
    return f"{balancer.role}: " + ", ".join(parts)


def report_servers(console: Console, balancers: list[Balancer]) -> None:
    """One line per kind of server: requests each served this run, failures, set aside."""
    for balancer in balancers:
        note(console, f"requests per server: {servers_summary(balancer)}")


def report_end(console: Console, outcome: Outcome, out: Path, total: int, done_before: int) -> None:
    """The closing message; exits non-zero when interrupted or when prompts failed."""
    done = done_before + outcome.written
    summary = (
        f"{done} of {total} results in {out} ({outcome.written} new this run, "
        f"{outcome.seconds:.1f}s)"
    )
    if outcome.signal is not None:
        name = signal.Signals(outcome.signal).name
        note(
            console, f"interrupted by {name}: {summary}; rerun the same command to resume", "yellow"
        )
        raise typer.Exit(128 + outcome.signal)
    if outcome.failed:
        why = (
            f"stopped after {outcome.failed} failed prompts"
            if outcome.stopped_on_errors
            else (f"{outcome.failed} prompts failed (not written)")
        )
        error_line(console, f"{why}: {summary}; rerun the same command to retry the rest")
        raise typer.Exit(1)
    note(console, f"done: {summary}")


@o.settings_options(command="eval")
def eval_command(
    data: Annotated[
        Path,
        typer.Argument(
            exists=True,
            help="Prompts: a JSON list of strings (like the TPO repo's data/sample.json), JSONL "
            "(or .jsonl.gz) records, CSV, or with the 'datasets' extra Parquet or a save_to_disk "
            "directory; records with a 'prompt' (or 'query', or 'instruction') field and an "
            "optional 'id', a 'messages' conversation, or a benchmark as published (see "
            "--format). Checked in full before any model work.",
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            dir_okay=False,
            help="Results JSONL, appended one line per finished prompt and method. Rerunning "
            "the same command skips prompts already in it (matched by id, else by prompt text, "
            "per method).",
        ),
    ],
    compare: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated methods to run on the same prompts at the same sample budget, "
            "e.g. tpo,bon: bon draws N*(D+1) samples. Replaces --mode.",
        ),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency",
            "-c",
            min=1,
            help="Prompts run at the same time (max_concurrency). Default: 4.",
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(min=1, help="Use only the first LIMIT prompts of DATA."),
    ] = None,
    max_errors: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Stop after this many failed prompts (failed prompts are not written; a rerun "
            "retries them). Default: 10.",
        ),
    ] = None,
    checkpoints: Annotated[
        str,
        typer.Option(
            help="Where each run in flight checkpoints, so a rerun after a kill resumes it: "
            "auto (RESULTS.checkpoints.sqlite beside --out, removed when every result is in), "
            "an SQLite file PATH (kept), or off.",
        ),
    ] = DEFAULT,
    checkpointer: Annotated[
        str | None,
        typer.Option(
            help="Your own LangGraph checkpointer instead, as module:attr: an async-capable "
            "BaseCheckpointSaver, or a function returning one or an async context manager "
            "giving one (e.g. AsyncPostgresSaver.from_conn_string(...)); its async setup() "
            "is awaited first. Each run's thread is deleted from it once its result line is "
            "written.",
        ),
    ] = None,
    data_format: Annotated[
        str,
        typer.Option(
            "--format",
            help="Layout of DATA: auto (detected from the first record's fields, and printed) "
            f"or one of {', '.join(FORMAT_NAMES)}. The benchmark's id and category-like fields "
            "(dataset, category, cluster, type, subject, level, ...) go into each result line.",
        ),
    ] = "auto",
    *,
    settings: o.CommandSettings,
) -> None:
    """Run TPO (or --compare several methods) over a dataset, appending one JSON line per
    finished prompt to --out.

    Resumable: rerun the same command after a crash, kill or Ctrl-C and only the missing
    prompts run. SIGINT/SIGTERM stop cleanly (exit 130/143) after writing every finished
    prompt. review_gradient has no flag: it needs an interactive resume.
    """
    console = stderr_console()
    secrets: list[str | None] = [settings.api_key]
    with exit_on_error(console, secrets):
        config, backends, prompts = settings.load(secrets)
        compare, limit = settings.option("compare", compare), settings.option("limit", limit)
        concurrency = settings.option("concurrency", concurrency, 4)
        max_errors = settings.option("max_errors", max_errors, 10)
        methods = parse_methods(settings.flags.get("mode"), compare, config)
        configs = {m: method_config(config, m, bool(compare)) for m in methods}
        items = _work_items(console, data, data_format, limit, methods)
        with open_results(out) as writer:
            pending, done_before = _pending(console, writer, items, configs)
            store = checkpoints_for(console, out, checkpoints, checkpointer)
            if not pending:
                if store is not None:
                    store.finish()
                note(console, f"done: all {len(items)} results already in {out}")
                return
            rows = {f"{data}: line {i.record.line}": i.record.fields for i in pending}
            graphs, balancers = build_graphs(backends, configs, settings.retry, prompts, rows)
            runner = EvalRunner(
                graphs,
                configs,
                describe_backends(backends),
                writer,
                concurrency=concurrency,
                max_errors=max_errors,
                balancers=balancers,
                checkpoints=store,
            )
            outcome = run_with_progress(console, runner, pending, secrets)
            if store is not None and outcome.signal is None and not outcome.failed:
                store.finish()  # every run is in the results
            report_servers(console, balancers)
    report_end(console, outcome, out, len(items), done_before)


def checkpoints_for(
    console: Console, out: Path, checkpoints: str, checkpointer: str | None
) -> Checkpoints | None:
    """Where ``out``'s runs checkpoint (see :func:`choose_checkpoints`); a note when the
    default finds no sqlite extra."""
    store = choose_checkpoints(out, checkpoints, checkpointer)
    if store is not None or checkpoints != DEFAULT or has_sqlite():
        return store
    note(
        console,
        "note: runs in flight are not checkpointed (install 'langgraph-tpo[sqlite]' to resume "
        "them after a kill)",
    )
    return None


def _work_items(
    console: Console, data: Path, data_format: str, limit: int | None, methods: list[str]
) -> list[WorkItem]:
    """Read and check DATA in full (before any model work), then plan the items."""
    dataset = load_dataset(data, data_format)
    if dataset.format != "plain":  # a benchmark's layout: say which, and how it was chosen
        how = "detected; --format to force another" if dataset.detected else "--format"
        note(console, f"reading {data} as {dataset.format} ({how})")
    items, duplicates = plan_items(dataset.records[:limit], methods)
    if duplicates:
        note(console, f"note: {duplicates} duplicate prompts (same id, or same text) run once")
    return items


def run_with_progress(
    console: Console, runner: EvalRunner, items: list[WorkItem], secrets: list[str | None]
) -> Outcome:
    """Run the items under one progress bar for the dataset."""
    with progress_bar(console) as bar, warnings.catch_warnings():
        # Items still queued when a run stops are dropped unstarted; that is expected.
        warnings.filterwarnings("ignore", "coroutine .* was never awaited", RuntimeWarning)
        progress = BarProgress(bar, secrets, runner.balancers)
        return asyncio.run(runner.execute(items, progress))


def _pending(
    console: Console, writer: ResultsWriter, items: list[WorkItem], configs: dict[str, TPOConfig]
) -> tuple[list[WorkItem], int]:
    """Items not in the results file yet, and how many are; repairs a truncated last line."""
    existing = read_results(writer.path)
    if writer.repair(existing) and existing.partial:
        note(console, f"note: dropped a truncated last line of {writer.path}")
    done = {line_key(line) for line in existing.lines}
    pending = [item for item in items if item.key not in done]
    skipped = len(items) - len(pending)
    if skipped:
        note(console, f"skipped {skipped} results (prompt x method) already in {writer.path}")
        stale = config_mismatches(existing.lines, {i.key for i in items}, configs)
        if stale:
            note(
                console,
                f"note: {stale} of them were made with other settings; they are kept "
                "(write to a new results file to redo them)",
            )
    return pending, skipped
