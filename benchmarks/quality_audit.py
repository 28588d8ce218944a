"""Benchmark: a quality audit of TPO's answers, by what can be counted.

Runs three variants over the same prompts (``benchmarks.prompts``), at the same sample
budget: ``tpo`` and ``revision`` (N samples, D iterations, N per update) and ``bon``
(best-of-N*(D+1), no loop). Prints per variant:

- **loops**: the share of final answers that are mostly repetition (the rule of
  :mod:`langgraph_tpo.degeneration`, applied to the final answer whatever the run dropped);
- **outputs looping**: the share of all sample and update outputs the runs counted as
  ``degenerate`` (with ``drop_loops`` on; before the rule existed: not counted);
- **meta talk**: the share of final answers that talk about the optimisation instead of
  answering: words of the prompts' own scaffolding (:data:`META_WORDS`: chosen, rejected,
  suggestions, improved response, ...) that the query does not contain;
- **delimited**: the share of raw update outputs that carry the run's delimiters (both:
  ``tagged``; at least one: ``any``), read from the policy's replies as they came back;
- **gain**: the mean of final score minus the best iteration-0 score;
- **win vs bon**: the share of prompts whose final score beats best-of-N's at equal budget
  (ties count half).

Backends: ``--backend embedded`` (SmolLM2 in-process, judged by itself, as ``tpo run``)
or ``--backend vllm`` (SmolLM2 on the test suite's vLLM CPU server, judged by itself as an
LLM judge through the same server; ``--policy-url`` reuses a running server).

A 135M policy judged by itself says little about a 70B policy under a trained reward model:
these numbers check that the method's machinery does not make answers worse, not that TPO
works at scale.

    python -m benchmarks.quality_audit --backend embedded --label after
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean
from typing import Any

from langchain_core.callbacks import AsyncCallbackHandler
from rich.console import Console
from rich.table import Table

from benchmarks.common import write_json
from benchmarks.prompts import prompts as benchmark_prompts
from langgraph_tpo import TPOConfig, create_tpo_graph
from langgraph_tpo.backends.factory import BackendSettings, build_models
from langgraph_tpo.degeneration import is_degenerate
from testsupport.pair import POLICY_NAME

VARIANTS = ("tpo", "revision", "bon")
META_WORDS = (
    "chosen",
    "rejected",
    "suggestion",
    "suggestions",
    "improved response",
    "improved answer",
    "improved version",
    "revised version",
    "original answer",
    "original response",
    "evaluation",
    "feedback",
    "reward model",
)
_META = [(w, re.compile(rf"\b{re.escape(w)}\b", re.IGNORECASE)) for w in META_WORDS]


def meta_words(answer: str, query: str) -> list[str]:
    """The scaffolding words in ``answer`` that ``query`` does not contain itself."""
    return [w for w, p in _META if p.search(answer) and not p.search(query)]


class UpdateOutputs(AsyncCallbackHandler):
    """Keeps every raw update output with the delimiters its call was given."""

    def __init__(self) -> None:
        self.delimiters: dict[Any, tuple[str, str]] = {}
        self.outputs: list[tuple[str, tuple[str, str]]] = []

    async def on_chat_model_start(self, serialized, messages, *, run_id, metadata=None, **kw):
        if (metadata or {}).get("tpo_step") == "update":
            self.delimiters[run_id] = tuple((metadata or {}).get("tpo_delimiters") or ("", ""))

    async def on_llm_end(self, response, *, run_id, **kw):
        delimiters = self.delimiters.pop(run_id, None)
        if delimiters is not None:
            self.outputs += [(g.text, delimiters) for batch in response.generations for g in batch]

    def shares(self) -> dict[str, float | None]:
        if not self.outputs:
            return {"tagged": None, "any": None, "looping": None, "outputs": 0}
        both = sum(all(d.lower() in t.lower() for d in ds) for t, ds in self.outputs)
        some = sum(any(d.lower() in t.lower() for d in ds) for t, ds in self.outputs)
        n = len(self.outputs)
        loops = sum(is_degenerate(t) for t, _ in self.outputs)
        return {"tagged": both / n, "any": some / n, "looping": loops / n, "outputs": n}


@dataclass
class VariantResult:
    """What one variant produced over all prompts."""

    finals: list[str] = field(default_factory=list)
    scores: list[float | None] = field(default_factory=list)
    gains: list[float] = field(default_factory=list)
    outputs: int = 0  # responses the policy wrote in sample and update
    loops: int = 0  # of which degenerate (counted by the runs, dropped or not)
    updates: UpdateOutputs = field(default_factory=UpdateOutputs)
    seconds: float = 0.0


def variant_config(variant: str, args: argparse.Namespace) -> dict[str, Any]:
    """The run settings of a variant; ``bon`` gets the same number of samples as the loop."""
    base = {
        "max_tokens": args.max_tokens,
        "seed": args.seed,
        "prompt_set": args.prompt_set,
        **({"extraction": args.extraction} if args.extraction else {}),
        **dict(args.set or []),
    }
    if variant == "bon":
        samples = args.num_samples * (args.max_iterations + 1)
        return {**base, "mode": "bon", "num_samples": samples, "max_iterations": 0}
    return {
        **base,
        "mode": variant,
        "num_samples": args.num_samples,
        "max_iterations": args.max_iterations,
    }


async def run_variant(graph, variant: str, queries: list[str], args) -> VariantResult:
    result = VariantResult()
    context = variant_config(variant, args)
    gate = asyncio.Semaphore(args.concurrency)

    async def one(query: str) -> dict[str, Any]:
        async with gate:
            out = await graph.ainvoke(
                {"query": query}, context=context, config={"callbacks": [result.updates]}
            )
        print(f"{variant}: {query[:40]!r} -> {out.get('score')}", file=sys.stderr, flush=True)
        return out

    start = time.perf_counter()
    outputs = await asyncio.gather(*(one(q) for q in queries))
    result.seconds = time.perf_counter() - start
    per_step = context["num_samples"]
    for out in outputs:
        trajectory = out.get("trajectory") or []
        result.outputs += per_step * len(trajectory)
        result.loops += sum((e.get("extraction") or {}).get("degenerate", 0) for e in trajectory)
        result.finals.append(out.get("response") or "")
        result.scores.append(out.get("score"))
        first = (out.get("trajectory") or [{}])[0].get("best_score")
        if first is not None and out.get("score") is not None:
            result.gains.append(out["score"] - first)
    return result


def summarize(results: dict[str, VariantResult], queries: list[str]) -> dict[str, Any]:
    bon = results.get("bon")
    table: dict[str, Any] = {}
    for variant, result in results.items():
        loops = [is_degenerate(a) for a in result.finals]
        meta = [bool(meta_words(a, q)) for a, q in zip(result.finals, queries, strict=True)]
        row: dict[str, Any] = {
            "loops": fmean(loops),
            "output_loops": result.loops / result.outputs if result.outputs else None,
            "meta_talk": fmean(meta),
            "delimited": result.updates.shares(),
            "mean_gain": fmean(result.gains) if result.gains else None,
            "mean_score": fmean(s for s in result.scores if s is not None),
            "seconds": result.seconds,
        }
        if bon is not None and variant != "bon":
            row["win_vs_bon"] = win_rate(result.scores, bon.scores)
        table[variant] = row
    return table


def win_rate(ours: list[float | None], theirs: list[float | None]) -> float:
    """Share of prompts where ``ours`` beats ``theirs`` (ties count half; None loses)."""
    points = []
    for a, b in zip(ours, theirs, strict=True):
        a = float("-inf") if a is None else a
        b = float("-inf") if b is None else b
        points.append(1.0 if a > b else 0.5 if a == b else 0.0)
    return fmean(points)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _delimited(shares: dict[str, Any]) -> str:
    if shares["tagged"] is None:
        return "-"
    return f"{_pct(shares['tagged'])} / {_pct(shares['any'])} of {shares['outputs']}"


def print_table(summary: dict[str, Any], title: str) -> None:
    table = Table(title=title)
    columns = ("variant", "loops", "outputs looping", "meta talk", "delimited (tagged/any)",
               "mean gain", "mean score", "win vs bon", "s")  # fmt: skip
    for column in columns:
        table.add_column(column)
    for variant, row in summary.items():
        delimited = row["delimited"]
        table.add_row(
            variant,
            _pct(row["loops"]),
            _pct(row.get("output_loops")),
            _pct(row["meta_talk"]),
            _delimited(delimited),
            "-" if row["mean_gain"] is None else f"{row['mean_gain']:+.3f}",
            f"{row['mean_score']:.3f}",
            _pct(row.get("win_vs_bon")),
            f"{row['seconds']:.0f}",
        )
    Console().print(table)


@contextmanager
def audit_models(args: argparse.Namespace) -> Iterator[tuple[Any, Any]]:
    if args.backend == "embedded":
        yield build_models(BackendSettings())
        return
    from benchmarks.servers import running_servers

    with running_servers(args) as servers:
        settings = BackendSettings(
            policy_url=servers.policy_openai_url, policy_model=servers.policy_model
        )
        yield build_models(settings)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("embedded", "vllm"), default="embedded")
    parser.add_argument("--prompts", type=int, default=32, help="how many prompts (1..32)")
    parser.add_argument("-n", "--num-samples", type=int, default=3)
    parser.add_argument("-d", "--max-iterations", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--prompt-set", default="paper")
    parser.add_argument("--extraction", choices=("lenient", "strict", "delimited"))
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--label", default="", help="names the results file")
    parser.add_argument(
        "--set",
        type=_setting,
        action="append",
        metavar="FIELD=JSON",
        help="another TPOConfig field for every run, e.g. --set repetition_penalty=1.2",
    )
    parser.add_argument("--policy-url", help="running policy server (vLLM) for --backend vllm")
    parser.add_argument("--policy-model", default=POLICY_NAME, help="served policy model name")
    parser.add_argument("--rescore", metavar="JSON", help="recount a saved audit and print it")
    return parser.parse_args(argv)


def _setting(text: str) -> tuple[str, Any]:
    name, _, value = text.partition("=")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


async def audit(args: argparse.Namespace) -> dict[str, Any]:
    queries = benchmark_prompts(args.prompts)
    with audit_models(args) as (policy, reward):
        TPOConfig(**variant_config("tpo", args))  # bad settings fail before any model call
        graph = create_tpo_graph(policy, reward)
        results = {v: await run_variant(graph, v, queries, args) for v in args.variants}
    summary = summarize(results, queries)
    answers = {
        v: [
            {
                "query": q,
                "response": a,
                "score": s,
                "loops": is_degenerate(a),
                "meta_words": meta_words(a, q),
            }
            for q, a, s in zip(queries, r.finals, r.scores, strict=True)
        ]
        for v, r in results.items()
    }
    return {
        "settings": {k: v for k, v in vars(args).items()},
        "summary": summary,
        "answers": answers,
    }


def rescore(path: str) -> dict[str, Any]:
    """A saved audit's table with loops and meta talk counted anew from its answers (the
    rules may have been refined since); the other columns as saved."""
    payload = json.loads(Path(path).read_text())
    for variant, answers in payload["answers"].items():
        row = payload["summary"][variant]
        row["loops"] = fmean(is_degenerate(a["response"]) for a in answers)
        row["meta_talk"] = fmean(bool(meta_words(a["response"], a["query"])) for a in answers)
        for a in answers:
            a["loops"], a["meta_words"] = (
                is_degenerate(a["response"]),
                meta_words(a["response"], a["query"]),
            )
    Path(path).write_text(json.dumps(payload, indent=2))
    return payload


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.rescore:
        print_table(rescore(args.rescore)["summary"], f"Quality audit (rescored): {args.rescore}")
        return
    if args.backend == "vllm" and args.policy_url:
        args.reward_url = args.policy_url  # running_servers reuses both only when both are set
    payload = asyncio.run(audit(args))
    title = (
        f"Quality audit: {args.backend}, {args.prompts} prompts, N={args.num_samples}, "
        f"D={args.max_iterations}, {args.max_tokens} tokens, prompts {args.prompt_set}"
        + (f", extraction {args.extraction}" if args.extraction else "")
    )
    print_table(payload["summary"], title)
    name = "quality_audit_" + "_".join(filter(None, (args.backend, args.prompt_set, args.label)))
    write_json(name, payload)


if __name__ == "__main__":
    main()
