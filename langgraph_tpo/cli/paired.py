"""The paired comparison of ``tpo report``: methods compared prompt by prompt.

For each pair (TPO, or revision, against best-of-N; TPO against revision; each iterative
method against its own iteration 0) on the prompts both sides answered: the mean score
difference with a 95% percentile bootstrap interval (resampling prompts), and wins, ties
and losses. ``--by FIELD`` repeats each comparison for each value of a category field of
the results (``category``, ``subject``, ``level``, ...). With a verifier reward (scores 0 or
1, e.g. ``tpo eval --reward math``) each side's accuracy is shown too.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from statistics import fmean
from typing import Any

from langgraph_tpo.cli.results import ResultLine
from langgraph_tpo.errors import ConfigError

BOOTSTRAP_RESAMPLES = 2000
CONFIDENCE = 0.95
ITERATIVE = ("tpo", "revision")
ALL = "all"

Line = ResultLine
Scorer = Callable[[Line], float]


@dataclass(frozen=True)
class Comparison:
    """Two sides to compare on the same prompts: a method's lines and how each is scored."""

    a: str
    b: str
    a_method: str
    b_method: str
    a_score: Scorer
    b_score: Scorer
    budget: str = ""  # "equal budget" or what differs, for best-of-N


@dataclass
class PairedRow:
    """One comparison (on one group of prompts): A - B per prompt, summarized."""

    a: str
    b: str
    group: str
    prompts: int
    mean_difference: float
    low: float
    high: float
    wins: int
    ties: int
    losses: int
    accuracy_a: float | None = None
    accuracy_b: float | None = None
    budget: str = ""


def final_score(line: Line) -> float:
    return float(line.score or 0)


def iteration_zero_score(line: Line) -> float:
    """The best score of the first iteration (the initial samples)."""
    first = line.best_scores[0] if line.best_scores else None
    return float(first if first is not None else line.score or 0)


def comparisons(groups: dict[str, list[Line]]) -> list[Comparison]:
    """The pairs to compare among the methods present."""
    found = [m for m in ITERATIVE if m in groups]
    pairs = []
    if "bon" in groups:
        pairs += [
            Comparison(m, "bon", m, "bon", final_score, final_score, _budget(groups, m))
            for m in found
        ]
    if len(found) == 2:
        pairs.append(Comparison("tpo", "revision", "tpo", "revision", final_score, final_score))
    pairs += [
        Comparison(m, f"{m} iteration 0", m, m, final_score, iteration_zero_score) for m in found
    ]
    return pairs


def _budget(groups: dict[str, list[Line]], method: str) -> str:
    """ "equal budget" when best-of-N drew N*(D+1) samples like ``method``, else the two."""
    mine = _config(groups[method])
    spent = (mine.get("num_samples") or 0) * ((mine.get("max_iterations") or 0) + 1)
    bon = _config(groups["bon"]).get("num_samples")
    if spent and bon == spent:
        return "equal budget"
    return f"unequal budget: {method} N*(D+1)={spent}, bon N={bon}"


def _config(lines: list[Line]) -> dict[str, Any]:
    return lines[0].config


def paired_rows(
    groups: dict[str, list[Line]],
    identity: Callable[[Line], str],
    by: str | None = None,
    seed: int = 0,
) -> list[PairedRow]:
    """Every comparison over all shared prompts, then (``by``) per value of that field."""
    if by is not None:
        check_field(groups, by)
    rows = []
    for comparison in comparisons(groups):
        pairs = _score_pairs(groups, comparison, identity, by)
        for group in [ALL, *sorted({g for g, _, _ in pairs} - {ALL})] if by else [ALL]:
            chosen = [(a, b) for g, a, b in pairs if group == ALL or g == group]
            if chosen:
                rows.append(summarize_pairs(comparison, group, chosen, seed))
    return rows


def check_field(groups: dict[str, list[Line]], field: str) -> None:
    """A ConfigError naming ``field`` and the fields the results have, when none has it."""
    lines = [line for lines in groups.values() for line in lines]
    if any(line.value(field) is not None for line in lines):
        return
    present = sorted({k for line in lines for k, v in line.present().items() if _is_category(v)})
    raise ConfigError(
        f"--by {field}: no result line has the field {field!r}; fields that could group "
        f"prompts: {', '.join(present) or 'none'}"
    )


def _is_category(value: Any) -> bool:
    return isinstance(value, str | int) and not isinstance(value, bool) or _is_label_list(value)


def _is_label_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _group_of(line: Line, by: str | None) -> str:
    value = line.value(by) if by else None
    if value is None:
        return "(none)"
    return ", ".join(value) if _is_label_list(value) else str(value)


def _score_pairs(
    groups: dict[str, list[Line]],
    comparison: Comparison,
    identity: Callable[[Line], str],
    by: str | None,
) -> list[tuple[str, float, float]]:
    """``(group, A's score, B's score)`` for each prompt both sides answered."""
    others = {identity(line): line for line in groups[comparison.b_method]}
    pairs = []
    for line in groups[comparison.a_method]:
        other = others.get(identity(line))
        if other is not None:
            group = _group_of(line, by)
            pairs.append((group, comparison.a_score(line), comparison.b_score(other)))
    return pairs


def summarize_pairs(
    comparison: Comparison, group: str, pairs: list[tuple[float, float]], seed: int
) -> PairedRow:
    """Mean difference, its bootstrap interval, wins/ties/losses and (0/1 scores) accuracy."""
    diffs = [a - b for a, b in pairs]
    low, high = bootstrap_interval(diffs, seed)
    binary = all(s in (0.0, 1.0) for pair in pairs for s in pair)
    return PairedRow(
        a=comparison.a,
        b=comparison.b,
        group=group,
        prompts=len(diffs),
        mean_difference=fmean(diffs),
        low=low,
        high=high,
        wins=sum(d > 0 for d in diffs),
        ties=sum(d == 0 for d in diffs),
        losses=sum(d < 0 for d in diffs),
        accuracy_a=fmean(a for a, _ in pairs) if binary else None,
        accuracy_b=fmean(b for _, b in pairs) if binary else None,
        budget=comparison.budget,
    )


def bootstrap_interval(
    diffs: list[float], seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES
) -> tuple[float, float]:
    """The 95% percentile bootstrap interval of the mean of ``diffs`` (prompts resampled
    with replacement; a fixed seed, so a report is reproducible)."""
    if len(set(diffs)) <= 1:
        return diffs[0], diffs[0]
    rng = random.Random(seed)
    means = sorted(fmean(rng.choices(diffs, k=len(diffs))) for _ in range(resamples))
    tail = (1 - CONFIDENCE) / 2
    return means[int(tail * resamples)], means[min(resamples - 1, int((1 - tail) * resamples))]


def paired_markdown(rows: list[PairedRow], by: str | None) -> list[str]:
    """The paired-comparison section of summary.md."""
    if not rows:
        return []
    grouped = f" by {by}" if by else ""
    out = [
        "",
        f"## Paired comparison{grouped} (A - B per prompt, on the prompts both answered)",
        "",
        "Mean score difference with a 95% bootstrap interval (prompts resampled "
        f"{BOOTSTRAP_RESAMPLES} times); wins, ties and losses count the prompts where A scored "
        "higher, the same or lower. Accuracy (verifier rewards: scores 0 or 1) is the share "
        "of prompts scored 1.",
        "",
        "| A | B | group | prompts | mean A - B | 95% CI | wins | ties | losses "
        "| accuracy A | accuracy B | budget |",
        "|---|---|---|---:|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    out += [
        f"| {r.a} | {r.b} | {r.group} | {r.prompts} | {r.mean_difference:+.4f} "
        f"| {interval(r)} | {r.wins} | {r.ties} | {r.losses} | {_percent(r.accuracy_a)} "
        f"| {_percent(r.accuracy_b)} | {r.budget} |"
        for r in rows
    ]
    return out


def interval(row: PairedRow) -> str:
    return f"[{row.low:+.4f}, {row.high:+.4f}]"


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value:.1%}"


def terminal_cells(row: PairedRow) -> list[str]:
    """One row of the terminal's paired table."""
    accuracy = (
        f"{_percent(row.accuracy_a)} vs {_percent(row.accuracy_b)}"
        if row.accuracy_a is not None
        else ""
    )
    return [
        f"{row.a} vs {row.b}",
        row.group,
        str(row.prompts),
        f"{row.mean_difference:+.4f}",
        interval(row),
        f"{row.wins}/{row.ties}/{row.losses}",
        accuracy,
    ]


TERMINAL_COLUMNS = ("comparison", "group", "prompts", "mean A-B", "95% CI", "W/T/L", "accuracy")
