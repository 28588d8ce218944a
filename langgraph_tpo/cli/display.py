"""What ``tpo run`` prints: live progress, the answer, and a table per iteration."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.table import Table

NEXT_NODE = {
    "sample": "reward_score",
    "reward_score": "select",
    "select": "textual_loss",
    "textual_loss": "textual_gradient",
    "textual_gradient": "update",
    "update": "reward_score",
}


class Progress:
    """A one-line live status: running node, iteration k of D, best score, elapsed time."""

    def __init__(self, console: Console, max_iterations: int, enabled: bool = True) -> None:
        self.console = console
        self.max_iterations = max_iterations
        self.start = time.perf_counter()
        self.node = "sample"
        self.iteration = 0
        self.best: float | None = None
        self._status = console.status(self.describe()) if enabled else None

    def __enter__(self) -> Progress:
        if self._status:
            self._status.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._status:
            self._status.__exit__(*exc)

    def describe(self) -> str:
        best = "-" if self.best is None else f"{self.best:.4g}"
        elapsed = time.perf_counter() - self.start
        return (
            f"[bold]{self.node}[/bold]  iteration {self.iteration}/{self.max_iterations}"
            f"  best {best}  {elapsed:.0f}s"
        )

    def node_done(self, node: str, update: dict[str, Any]) -> None:
        if "iteration" in (update or {}):
            self.iteration = update["iteration"]
        if node == "select" and update.get("score") is not None:
            self.best = update["score"]
        self.node = "done" if node == "select" and update.get("stop_reason") else NEXT_NODE[node]
        if self._status:
            self._status.update(self.describe())


def iteration_table(trajectory: list[dict[str, Any]]) -> Table:
    table = Table(title="Iterations", show_lines=False)
    for column in ("iter", "chosen", "rejected", "new (mean)", "kept", "best so far", "time s"):
        table.add_column(column, justify="right")
    for entry in trajectory:
        table.add_row(
            str(entry["iteration"]),
            _score(entry.get("chosen")),
            _score(entry.get("rejected")),
            _num(entry.get("mean_new_score")),
            f"{len(entry.get('new_scores', []))}",
            _num(entry.get("best_score")),
            f"{sum(entry.get('timings', {}).values()):.1f}",
        )
    return table


def _score(candidate: dict[str, Any] | None) -> str:
    return "-" if not candidate else _num(candidate.get("score"))


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def print_result(console: Console, out: dict[str, Any]) -> None:
    console.rule("Best response")
    console.print(out.get("response") or "[red](no usable response)[/red]", markup=False)
    console.rule()
    score = out.get("score")
    console.print(
        f"score: {'-' if score is None else f'{score:.4f}'}   "
        f"stop: {out.get('stop_reason')}   candidates: {len(out.get('candidates', []))}"
    )
    console.print(iteration_table(out.get("trajectory", [])))
