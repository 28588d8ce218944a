"""What ``tpo run`` shows: live progress, the answer, and a table per iteration.

Progress follows two of the graph's stream modes: ``updates`` (a node finished, so the
next one is running) and ``custom`` (the ``tpo_iteration`` event ``select`` emits after
every iteration, with the best score so far).
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

NEXT_NODE = {
    "sample": "reward_score",
    "reward_score": "select",
    "select": "textual_loss",
    "textual_loss": "textual_gradient",
    "textual_gradient": "update",
    "update": "reward_score",
}
ITERATION_EVENT = "tpo_iteration"
LOOP_NODES = ("textual_loss", "textual_gradient", "update")  # they work on the next iteration


class RunProgress:
    """A live status line (running node, iteration k of D, best score, elapsed time) and
    one printed line per finished iteration."""

    def __init__(self, console: Console, max_iterations: int, enabled: bool = True) -> None:
        self.console = console
        self.max_iterations = max_iterations
        self.start = time.perf_counter()
        self.node = "sample"
        self.iteration = 0
        self.best: float | None = None
        self.enabled = enabled
        self._spinner = Spinner("dots")
        self._live = Live(self, console=console, transient=True, refresh_per_second=8)

    def __enter__(self) -> RunProgress:
        if self.enabled:
            self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.enabled:
            self._live.__exit__(*exc)

    def __rich__(self) -> RenderableType:
        """Rendered on every refresh, so the elapsed time keeps counting."""
        self._spinner.text = Text.from_markup(self.describe())
        return Group(self._spinner)

    def describe(self) -> str:
        best = "-" if self.best is None else f"{self.best:.4g}"
        current = self.iteration + (self.node in LOOP_NODES)
        return (
            f"[bold]{self.node}[/bold]  iteration {current}/{self.max_iterations}"
            f"  best {best}  {self.elapsed():.0f}s"
        )

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def on_update(self, chunk: dict[str, Any]) -> None:
        """An ``updates`` chunk: the node that finished, so the one that runs next."""
        for node, update in chunk.items():
            update = update or {}
            if "iteration" in update:
                self.iteration = update["iteration"]
            if node == "select" and update.get("stop_reason"):
                self.node = "done"
            else:
                self.node = NEXT_NODE.get(node, node)

    def on_event(self, event: Any) -> None:
        """A ``custom`` event; ``tpo_iteration`` prints the iteration's line."""
        if not isinstance(event, dict) or event.get("event") != ITERATION_EVENT:
            return
        self.iteration = event.get("iteration", self.iteration)
        if event.get("best_score") is not None:
            self.best = event["best_score"]
        if self.enabled:
            self.console.print(iteration_line(event, self.max_iterations, self.elapsed()))


def iteration_line(event: dict[str, Any], max_iterations: int, elapsed: float) -> Text:
    """``iteration 1/2  best 12.5  new 4 (mean 9.1)  3s  stop: max_iterations``."""
    scores = event.get("new_scores") or []
    mean = f" (mean {sum(scores) / len(scores):.4g})" if scores else ""
    stop = f"  stop: {event['stop_reason']}" if event.get("stop_reason") else ""
    return Text(
        f"iteration {event.get('iteration')}/{max_iterations}  best "
        f"{_num(event.get('best_score'))}  new {len(scores)}{mean}  {elapsed:.0f}s{stop}"
    )


def iteration_table(trajectory: list[dict[str, Any]]) -> Table:
    """One row per iteration: the scores of chosen and rejected critiqued in it, how many
    new responses were scored and their mean, the best score so far, and node time."""
    table = Table(title="Iterations", show_lines=False)
    for column in ("iter", "chosen", "rejected", "new", "mean new", "best so far", "time s"):
        table.add_column(column, justify="right")
    for entry in trajectory:
        table.add_row(
            str(entry["iteration"]),
            _score(entry.get("chosen")),
            _score(entry.get("rejected")),
            f"{len(entry.get('new_scores', []))}",
            _num(entry.get("mean_new_score")),
            _num(entry.get("best_score")),
            f"{sum(entry.get('timings', {}).values()):.1f}",
        )
    return table


def _score(candidate: dict[str, Any] | None) -> str:
    return "-" if not candidate else _num(candidate.get("score"))


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def print_result(console: Console, out: dict[str, Any]) -> None:
    """The best response, its score and stop reason, then the iteration table."""
    console.rule("Best response")
    response = out.get("response")
    console.print(Text(response) if response else Text("(no usable response)", style="red"))
    console.rule()
    score = out.get("score")
    console.print(
        f"score: {'-' if score is None else f'{score:.4f}'}   "
        f"stop: {out.get('stop_reason')}   candidates: {len(out.get('candidates', []))}",
        markup=False,
    )
    console.print(iteration_table(out.get("trajectory", [])))
