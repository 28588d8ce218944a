"""``tpo report RESULTS.jsonl [...] -o DIR``: a reward curve and a summary table.

* ``DIR/reward_curve.png``: per method, the mean over prompts of the best-so-far score after
  each iteration, with a band for the spread (±1 std, or the interquartile range with
  ``--band iqr``). Best-of-N has no iterations: a flat dashed line from iteration 0.
  ``DIR/reward_curve.json`` holds the plotted series.
* ``DIR/summary.md`` (and ``summary.json``): per method the mean final score, the mean gain
  over the first iteration's best, the win rate of the final response over that initial
  best (strictly better), tokens, generations and wall time per prompt; and head-to-head
  counts between methods on the prompts they share; and the paired comparison
  (:mod:`langgraph_tpo.cli.paired`: TPO vs best-of-N and vs its iteration 0, mean difference
  with a 95% bootstrap interval, wins/ties/losses, accuracy for verifier rewards), per
  category with ``--by FIELD``.

Results files still being written work: a trailing partial line is ignored.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import combinations
from pathlib import Path
from statistics import fmean, pstdev, quantiles
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from langgraph_tpo.cli.console import exit_on_error, note, stderr_console
from langgraph_tpo.cli.eval_plan import METHODS
from langgraph_tpo.cli.paired import (
    TERMINAL_COLUMNS,
    PairedRow,
    paired_markdown,
    paired_rows,
    terminal_cells,
)
from langgraph_tpo.cli.results import (
    ResultLine,
    ResultUsage,
    data_id,
    line_key,
    line_text,
    read_results,
)
from langgraph_tpo.errors import ConfigError

BANDS = {"std": "±1 std across prompts", "iqr": "interquartile range (25th-75th percentile)"}


@dataclass
class Curve:
    """One method's plotted series: mean best-so-far score per iteration and its band."""

    iterations: list[int]
    mean: list[float]
    low: list[float]
    high: list[float]
    prompts: int
    flat: bool = False  # best-of-N: no iterations, drawn as a flat line
    samples: int | None = None  # N of best-of-N (the most common num_samples of its lines)


@dataclass
class MethodSummary:
    """The summary numbers of one method."""

    method: str
    prompts: int
    mean_final_score: float
    mean_gain: float
    win_rate: float
    tokens_per_prompt: float | None
    generations_per_prompt: float
    wall_s_per_prompt: float


def load_lines(paths: Sequence[Path]) -> tuple[list[ResultLine], int]:
    """Usable result lines of all files (first of each key wins), and how many were
    left out (no score, or a key already seen)."""
    lines: dict[str, ResultLine] = {}
    left_out = 0
    for path in paths:
        for line in read_results(path).lines:
            key = line_key(line)
            if key in lines or not _is_number(line.score) or not line.best_scores:
                left_out += 1
                continue
            lines[key] = line
    return list(lines.values()), left_out


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def by_method(lines: list[ResultLine]) -> dict[str, list[ResultLine]]:
    """Lines grouped by method: tpo, revision, bon first, others as they come."""
    groups: dict[str, list[ResultLine]] = {}
    for line in lines:
        groups.setdefault(line.method, []).append(line)
    order = [m for m in METHODS if m in groups] + [m for m in groups if m not in METHODS]
    return {m: groups[m] for m in order}


def best_so_far(line: ResultLine, length: int) -> list[float]:
    """Best score after each of ``length`` iterations, carried forward after a stop."""
    scores = [float(s) for s in line.best_scores if _is_number(s)] or [float(line.score or 0)]
    return scores[:length] + [scores[-1]] * (length - len(scores))


def make_curves(groups: dict[str, list[ResultLine]], band: str) -> dict[str, Curve]:
    """The plotted series of every method, each as long as its longest run (prompts that
    stopped early keep their best); best-of-N spans the longest other curve."""
    lengths = {m: max(len(line.best_scores) for line in lines) for m, lines in groups.items()}
    longest = max((n for m, n in lengths.items() if m != "bon"), default=1)
    curves = {}
    for method, lines in groups.items():
        flat = method == "bon"
        length = lengths[method]
        rows = [
            best_so_far(line, 1) * longest if flat else best_so_far(line, length) for line in lines
        ]
        curves[method] = _curve([list(column) for column in zip(*rows, strict=True)], band, flat)
        if flat:
            curves[method].samples = _common_num_samples(lines)
    return curves


def _common_num_samples(lines: list[ResultLine]) -> int | None:
    counts = Counter(line.config.get("num_samples") for line in lines)
    value, _ = counts.most_common(1)[0]
    return value if isinstance(value, int) else None


def _curve(columns: list[list[float]], band: str, flat: bool) -> Curve:
    """Mean and band of each iteration's scores (one column per iteration)."""
    mean = [fmean(c) for c in columns]
    if band == "iqr":
        bounds = [_quartiles(c) for c in columns]
        low, high = [b[0] for b in bounds], [b[1] for b in bounds]
    else:
        spread = [pstdev(c) for c in columns]
        low = [m - s for m, s in zip(mean, spread, strict=True)]
        high = [m + s for m, s in zip(mean, spread, strict=True)]
    return Curve(list(range(len(columns))), mean, low, high, len(columns[0]), flat)


def _quartiles(values: list[float]) -> tuple[float, float]:
    """25th and 75th percentile (linear interpolation, as numpy's default)."""
    if len(values) < 2:
        return values[0], values[0]
    q1, _, q3 = quantiles(values, n=4, method="inclusive")
    return q1, q3


def summarize(method: str, lines: list[ResultLine]) -> MethodSummary:
    """Mean final score, gain and win rate over the initial best, cost per prompt."""
    finals = [float(line.score or 0) for line in lines]
    initials = [best_so_far(line, 1)[0] for line in lines]
    usages = [line.usage or ResultUsage() for line in lines]
    tokens = [u.total_tokens for u in usages if u.total_tokens is not None]
    return MethodSummary(
        method=method,
        prompts=len(lines),
        mean_final_score=fmean(finals),
        mean_gain=fmean(f - i for f, i in zip(finals, initials, strict=True)),
        win_rate=fmean(f > i for f, i in zip(finals, initials, strict=True)),
        tokens_per_prompt=fmean(tokens) if tokens else None,
        generations_per_prompt=fmean(u.generations or 0 for u in usages),
        wall_s_per_prompt=fmean((line.timings and line.timings.wall_s) or 0 for line in lines),
    )


def prompt_identity(line: ResultLine) -> str:
    """The prompt a line answers, across methods: its id, else its text (or conversation)."""
    given = data_id(line)
    return f"id:{given}" if given is not None else f"prompt:{line_text(line)}"


def head_to_head(groups: dict[str, list[ResultLine]]) -> list[dict[str, Any]]:
    """For each pair of methods, on the prompts both answered: who scored higher."""
    scores = {
        m: {prompt_identity(x): float(x.score or 0) for x in lines} for m, lines in groups.items()
    }
    rows = []
    for a, b in combinations(groups, 2):
        shared = scores[a].keys() & scores[b].keys()
        diffs = [scores[a][p] - scores[b][p] for p in shared]
        rows.append(
            {
                "a": a,
                "b": b,
                "prompts": len(shared),
                "a_better": sum(d > 0 for d in diffs),
                "tie": sum(d == 0 for d in diffs),
                "b_better": sum(d < 0 for d in diffs),
            }
        )
    return rows


def plot_curves(curves: dict[str, Curve], band: str) -> Any:
    """The reward-curve figure (matplotlib ``Figure`` on the Agg canvas, no pyplot)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError as exc:
        raise ConfigError(
            "tpo report needs matplotlib: pip install 'langgraph-tpo[plots]'"
        ) from exc
    fig = Figure(figsize=(7.5, 4.5), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for method, curve in curves.items():
        (line,) = ax.plot(
            curve.iterations,
            curve.mean,
            linestyle="--" if curve.flat else "-",
            marker="o",
            markevery=[0] if curve.flat else None,
            label=_label(method, curve),
        )
        ax.fill_between(curve.iterations, curve.low, curve.high, color=line.get_color(), alpha=0.18)
    ax.set_xlabel("iteration")
    ax.set_ylabel("reward of the best response so far (mean)")
    ax.set_title(f"Reward vs TPO iteration (band: {BANDS[band]})")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    return fig


def _label(method: str, curve: Curve) -> str:
    if not curve.flat:
        return f"{method}, {curve.prompts} prompts"
    n = f"best-of-{curve.samples}" if curve.samples else "best-of-N"
    return f"{method} ({n}, no iterations), {curve.prompts} prompts"


def summary_markdown(
    summaries: list[MethodSummary],
    pairs: list[dict[str, Any]],
    sources: list[str],
    band: str,
    paired: Sequence[str] = (),
) -> str:
    """summary.md: the per-method table, head-to-head counts and the curve."""
    out = [
        "# TPO evaluation summary",
        "",
        f"Results: {', '.join(sources)}. Scores are the reward model's. Gain and win rate "
        "compare each prompt's final response with the best response of its first "
        "iteration (iteration 0); best-of-N has no iterations, so both are 0 for it. "
        "Tokens and generations count the policy's calls (tokens: when the backend reports "
        "them).",
        "",
        "| method | prompts | mean final score | mean gain over iteration-0 best "
        "| win rate over iteration-0 best | tokens / prompt | generations / prompt "
        "| wall s / prompt |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    out += [_summary_row(s) for s in summaries]
    if pairs:
        out += [
            "",
            "## Head to head (prompts both methods answered)",
            "",
            "| A | B | prompts | A better | tie | B better |",
            "|---|---|---:|---:|---:|---:|",
        ]
        out += [
            f"| {p['a']} | {p['b']} | {p['prompts']} | {p['a_better']} | {p['tie']} "
            f"| {p['b_better']} |"
            for p in pairs
        ]
    out += paired
    out += ["", f"![reward curve](reward_curve.png) (band: {BANDS[band]})", ""]
    return "\n".join(out)


def _summary_row(s: MethodSummary) -> str:
    tokens = "n/a" if s.tokens_per_prompt is None else f"{s.tokens_per_prompt:.0f}"
    return (
        f"| {s.method} | {s.prompts} | {s.mean_final_score:.4f} | {s.mean_gain:+.4f} "
        f"| {s.win_rate:.1%} | {tokens} | {s.generations_per_prompt:.1f} "
        f"| {s.wall_s_per_prompt:.2f} |"
    )


def console_table(summaries: list[MethodSummary]) -> Table:
    """The per-method numbers for the terminal."""
    table = Table(title="Summary")
    for column in ("method", "prompts", "final", "gain", "win rate", "tokens", "wall s"):
        table.add_column(column, justify="right")
    for s in summaries:
        tokens = "n/a" if s.tokens_per_prompt is None else f"{s.tokens_per_prompt:.0f}"
        table.add_row(
            s.method,
            str(s.prompts),
            f"{s.mean_final_score:.4f}",
            f"{s.mean_gain:+.4f}",
            f"{s.win_rate:.1%}",
            tokens,
            f"{s.wall_s_per_prompt:.2f}",
        )
    return table


def paired_table(rows: list[PairedRow]) -> Table:
    """The paired comparison for the terminal."""
    table = Table(title="Paired comparison (A - B per prompt)")
    for column in TERMINAL_COLUMNS:
        table.add_column(column, justify="left" if column in ("comparison", "group") else "right")
    for row in rows:
        table.add_row(*terminal_cells(row))
    return table


def write_report(
    paths: Sequence[Path], out_dir: Path, band: str, by: str | None = None
) -> tuple[list[MethodSummary], list[PairedRow]]:
    """Write reward_curve.png/.json and summary.md/.json into ``out_dir``; the summaries and
    the paired comparison (``by``: also per value of that field)."""
    lines, left_out = load_lines(paths)
    if not lines:
        raise ConfigError(f"no finished results with a score in {', '.join(map(str, paths))}")
    groups = by_method(lines)
    curves = make_curves(groups, band)
    figure = plot_curves(curves, band)
    summaries = [summarize(m, group) for m, group in groups.items()]
    pairs = head_to_head(groups)
    paired = paired_rows(groups, prompt_identity, by)
    out_dir.mkdir(parents=True, exist_ok=True)
    figure.savefig(out_dir / "reward_curve.png")
    _write_json(
        out_dir / "reward_curve.json",
        {
            "band": band,
            "band_label": BANDS[band],
            "series": {m: asdict(c) for m, c in curves.items()},
        },
    )
    sources = [str(p) for p in paths]
    (out_dir / "summary.md").write_text(
        summary_markdown(summaries, pairs, sources, band, paired_markdown(paired, by))
    )
    _write_json(
        out_dir / "summary.json",
        {
            "sources": sources,
            "left_out": left_out,
            "methods": {s.method: asdict(s) for s in summaries},
            "head_to_head": pairs,
            "paired": [asdict(row) for row in paired],
            "paired_by": by,
        },
    )
    return summaries, paired


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2) + "\n")


def report_command(
    results: Annotated[
        list[Path],
        typer.Argument(
            exists=True,
            dir_okay=False,
            help="Results files of tpo eval (JSONL); files still being written are fine.",
        ),
    ],
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            file_okay=False,
            help="Directory for reward_curve.png (+ .json with the plotted series) and "
            "summary.md (+ .json).",
        ),
    ] = Path("report"),
    band: Annotated[
        str,
        typer.Option(
            help="Spread band of the reward curve: std (mean ± 1 std across prompts) or iqr "
            "(25th-75th percentile).",
        ),
    ] = "std",
    by: Annotated[
        str | None,
        typer.Option(
            "--by",
            help="Also compare methods per value of this field of the results (a benchmark's "
            "category, subject, level, type, ...).",
        ),
    ] = None,
) -> None:
    """Plot the reward curve (mean best-so-far score per iteration, one line per method) into
    DIR/reward_curve.png and summarize final score, gain and win rate over the first
    iteration, tokens and wall time per prompt into DIR/summary.md, with the paired
    comparison (TPO vs best-of-N and vs iteration 0: mean difference, 95% bootstrap
    interval, wins/ties/losses; --by FIELD per category)."""
    console = stderr_console()
    with exit_on_error(console, []):
        if band not in BANDS:
            raise ConfigError(f"--band must be one of {', '.join(BANDS)}, got {band!r}")
        summaries, paired = write_report(results, out_dir, band, by)
    Console().print(console_table(summaries))
    if paired:
        Console().print(paired_table(paired))
    note(console, f"wrote {out_dir / 'reward_curve.png'} and {out_dir / 'summary.md'}")
