"""What ``tpo eval`` runs (methods, their configs, the work items) and what it records.

``--compare tpo,bon`` runs every method on the same prompts at the same sample budget:
TPO and revision draw N samples and N more per iteration, N*(D+1) in all, so best-of-N
gets ``num_samples = N*(D+1)`` (the paper's comparison).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from langgraph_tpo.cli.data import PromptRecord
from langgraph_tpo.cli.results import ResultLine, line_key, prompt_id, result_key
from langgraph_tpo.config import TPOConfig
from langgraph_tpo.errors import ConfigError

METHODS = ("tpo", "revision", "bon")
USAGE_FIELDS = ("requests", "generations", "prompt_tokens", "completion_tokens")


@dataclass(frozen=True)
class WorkItem:
    """One prompt to run with one method."""

    record: PromptRecord
    method: str
    key: str


def parse_methods(mode_flag: str | None, compare: str | None, config: TPOConfig) -> list[str]:
    """The methods to run: ``--compare``'s list, else the configured mode."""
    if not compare:
        return [config.mode]
    if mode_flag:
        raise ConfigError("--mode and --compare cannot be combined: --compare lists the modes")
    methods = list(dict.fromkeys(m.strip().lower() for m in compare.split(",") if m.strip()))
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ConfigError(
            f"--compare: unknown method(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
            f"choose from {', '.join(METHODS)}"
        )
    return methods


def method_config(config: TPOConfig, method: str, budget_matched: bool) -> TPOConfig:
    """``config`` in ``method``'s mode; budget-matched bon draws N*(D+1) samples."""
    overrides: dict[str, Any] = {"mode": method}
    if method == "bon" and budget_matched:
        overrides["num_samples"] = config.num_samples * (config.max_iterations + 1)
    return config.with_overrides(overrides)


def plan_items(records: list[PromptRecord], methods: list[str]) -> tuple[list[WorkItem], int]:
    """Work items in prompt-major order (each prompt's methods together), and how many
    duplicates (same key: same id, or same text without id) were dropped."""
    items: dict[str, WorkItem] = {}
    duplicates = 0
    for record in records:
        for method in methods:
            key = result_key(method, record.id, record.text)
            if key in items:
                duplicates += 1
                continue
            items[key] = WorkItem(record, method, key)
    return list(items.values()), duplicates


def record_id(record: PromptRecord) -> dict[str, Any]:
    """``id`` (the data's, else derived from the prompt: never null) and where it came from."""
    if record.id is not None:
        return {"id": record.id, "id_from": "data"}
    return {"id": prompt_id(record.text), "id_from": "prompt"}


def record_fields(record: PromptRecord) -> dict[str, Any]:
    """What a result line keeps of the data: the conversation when it has several turns,
    the layout it was read in, its category-like fields and a reference answer."""
    kept: dict[str, Any] = dict(record.fields)
    if record.messages is not None:
        kept["messages"] = [dict(m) for m in record.messages]
    return kept


def result_line(
    item: WorkItem,
    out: dict[str, Any],
    wall_s: float,
    config: TPOConfig,
    backend: dict[str, Any],
) -> dict[str, Any]:
    """The JSON line recorded for one finished prompt and method."""
    trajectory = out.get("trajectory") or []
    return {
        "key": item.key,
        **record_id(item.record),
        "line": item.record.line,
        "prompt": item.record.prompt,
        **record_fields(item.record),
        "method": item.method,
        "response": out.get("response"),
        "score": out.get("score"),
        "initial_best": trajectory[0].get("best_score") if trajectory else None,
        "best_scores": [e.get("best_score") for e in trajectory],
        "mean_scores": [e.get("mean_new_score") for e in trajectory],
        "iterations": out.get("iteration", 0),
        "stop_reason": out.get("stop_reason"),
        "timings": {"wall_s": round(wall_s, 4), "nodes_s": node_seconds(trajectory)},
        "usage": total_usage(trajectory),
        "config": config.model_dump(),
        "backend": backend,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def node_seconds(trajectory: list[dict[str, Any]]) -> dict[str, float]:
    """Seconds spent in each node, summed over the iterations."""
    totals: Counter[str] = Counter()
    for entry in trajectory:
        totals.update(entry.get("timings") or {})
    return {node: round(seconds, 4) for node, seconds in totals.items()}


def total_usage(trajectory: list[dict[str, Any]]) -> dict[str, int | None]:
    """Policy requests, generations and tokens over the run; token counts are null when
    the backend reported none."""
    totals: Counter[str] = Counter()
    for entry in trajectory:
        totals.update({k: int(v or 0) for k, v in (entry.get("usage") or {}).items()})
    usage: dict[str, int | None] = {k: totals.get(k, 0) for k in USAGE_FIELDS}
    tokens = totals.get("prompt_tokens", 0) + totals.get("completion_tokens", 0)
    if not tokens:
        usage["prompt_tokens"] = usage["completion_tokens"] = None
    usage["total_tokens"] = tokens or None
    return usage


def config_mismatches(
    lines: list[ResultLine], wanted: set[str], configs: dict[str, TPOConfig]
) -> int:
    """How many existing results for this run's items were made with other settings."""
    count = 0
    for line in lines:
        if line.method in configs and line_key(line) in wanted:
            count += line.config != configs[line.method].model_dump()
    return count
