"""The runner of ``tpo eval`` without its terminal: what it reports goes through any
``EvalProgress``, and the lines it writes are the results."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from langgraph_tpo import TPOConfig, create_tpo_graph
from langgraph_tpo.cli.data import load_dataset
from langgraph_tpo.cli.eval_plan import WorkItem, plan_items
from langgraph_tpo.cli.eval_runner import EvalRunner, Outcome
from langgraph_tpo.cli.results import open_results, read_results
from langgraph_tpo.fakes import FakeBatchReward, FakeNPolicy


class Recorded:
    """An EvalProgress that keeps what it was told."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def started(self, total: int) -> None:
        self.events.append(("started", total))

    def resuming(self, count: int, where: str) -> None:
        self.events.append(("resuming", count))

    def failed(self, item: WorkItem, exc: BaseException) -> None:
        self.events.append(("failed", item.record.line, type(exc).__name__))

    def advanced(self, outcome: Outcome) -> None:
        self.events.append(("advanced", outcome.written, outcome.failed))


def failing_on_two(kind: str, call: int, index: int) -> str:
    return f"answer {index}"


async def score_or_fail(pairs):  # noqa: ANN001, ANN201
    if any("two" in conversation[-1]["content"] for conversation, _ in pairs):
        raise RuntimeError("the reward refuses prompt two")
    return [float(len(text)) for _, text in pairs]


def test_the_runner_reports_through_any_progress_and_writes_what_finished(
    tmp_path: Path,
) -> None:
    data = tmp_path / "prompts.json"
    data.write_text(json.dumps(["one", "two", "three"]))
    items, _ = plan_items(load_dataset(data, "auto").records, ["tpo"])
    config = TPOConfig(num_samples=2, max_iterations=1)
    reward = FakeBatchReward()
    reward.ascore_batch = score_or_fail  # type: ignore[method-assign]
    graph = create_tpo_graph(FakeNPolicy(responder=failing_on_two), reward, config)
    progress = Recorded()
    out = tmp_path / "results.jsonl"
    with open_results(out) as writer:
        runner = EvalRunner(
            {"tpo": graph}, {"tpo": config}, {"fake": True}, writer,
            concurrency=2, max_errors=5,
        )  # fmt: skip
        outcome = asyncio.run(runner.execute(items, progress))
    assert (outcome.written, outcome.failed, outcome.signal) == (2, 1, None)
    assert progress.events[0] == ("started", 3)
    two = next(item for item in items if item.record.prompt == "two")
    assert ("failed", two.record.line, "RewardError") in progress.events
    assert [e for e in progress.events if e[0] == "advanced"][-1] == ("advanced", 2, 1)
    assert sorted(line.prompt for line in read_results(out).lines) == ["one", "three"]
