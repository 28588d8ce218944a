"""The runner of ``tpo eval``: work items run concurrently, each finished one appended to the
results file at once, runs in flight checkpointed; what it shows goes through an
:class:`EvalProgress` (``cli/evaluate.py`` draws it with rich).

Prompts run through ``abatch_as_completed`` with ``max_concurrency``; each finished prompt
is one write (fsync'd); SIGINT/SIGTERM stop the run cleanly after every finished line is
written, and a rerun resumes the runs that were in flight from their last checkpointed node
(:mod:`~langgraph_tpo.cli.eval_checkpoints`).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Protocol

from langchain_core.runnables import RunnableLambda
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import RetryPolicy

from langgraph_tpo.assembly import assemble
from langgraph_tpo.backends.factory import BackendSettings
from langgraph_tpo.backends.plumbing.balancer import Balancer, count_requests
from langgraph_tpo.cli.eval_checkpoints import (
    Checkpoints,
    count_in_flight,
    open_checkpoints,
    run_or_resume,
    thread_config,
)
from langgraph_tpo.cli.eval_plan import WorkItem, result_line
from langgraph_tpo.cli.models import check_servers
from langgraph_tpo.cli.results import ResultsWriter
from langgraph_tpo.config import TPOConfig
from langgraph_tpo.prompts import PromptSet
from langgraph_tpo.reward import Row, check_row, row_fields_of

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class Outcome:
    """How an eval run ended."""

    written: int = 0
    failed: int = 0
    signal: int | None = None
    stopped_on_errors: bool = False
    seconds: float = 0.0


class EvalProgress(Protocol):
    """What the runner reports while it runs; the command shows it."""

    def started(self, total: int) -> None:
        """``total`` items are about to run."""

    def resuming(self, count: int, where: str) -> None:
        """``count`` runs that were in flight resume from the checkpoints at ``where``."""

    def failed(self, item: WorkItem, exc: BaseException) -> None:
        """``item`` failed with ``exc`` (it is not written; a rerun retries it)."""

    def advanced(self, outcome: Outcome) -> None:
        """One more item ended (written or failed); ``outcome`` so far."""


@dataclass
class EvalRunner:
    """Runs work items concurrently, appending each finished one to the results file."""

    graphs: dict[str, Any]
    configs: dict[str, TPOConfig]
    backend: dict[str, Any]
    writer: ResultsWriter
    _: KW_ONLY
    concurrency: int
    max_errors: int
    balancers: list[Balancer] = field(default_factory=list)
    checkpoints: Checkpoints | None = None  # where runs checkpoint to (None: nowhere)
    outcome: Outcome = field(default_factory=Outcome)
    saver: BaseCheckpointSaver | None = None  # open while ``execute`` runs

    @property
    def scope(self) -> str:
        """What the thread ids add to keep apart results files sharing a store."""
        return self.checkpoints.scope if self.checkpoints is not None else ""

    async def run_item(self, item: WorkItem) -> dict[str, Any]:
        """Run (or resume) one prompt with its method and append its line; no await
        between the run and the write, so a cancelled item writes nothing and a finished
        one is always written. Its checkpoints go once the line is written."""
        start = time.perf_counter()
        graph = self.graphs[item.method]
        config = thread_config(item, self.scope)
        with count_requests() as requests:
            if self.saver is None:
                out = await graph.ainvoke(item.record.graph_input())
            else:
                out = await run_or_resume(graph, item, config)
        line = result_line(
            item, out, time.perf_counter() - start, self.configs[item.method], self.backend
        )
        if self.balancers:
            line["server_requests"] = requests_by_role(requests)
        self.writer.write(line)
        self.outcome.written += 1
        if self.saver is not None:
            await self.saver.adelete_thread(config["configurable"]["thread_id"])
        return line

    async def execute(self, items: list[WorkItem], progress: EvalProgress) -> Outcome:
        """Run ``items``; SIGINT/SIGTERM stop it cleanly (finished lines are all written)."""
        start = time.perf_counter()
        main = asyncio.current_task()
        loop = asyncio.get_running_loop()

        def on_signal(sig: int) -> None:
            if self.outcome.signal is None and main is not None:
                self.outcome.signal = sig
                main.cancel()

        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, on_signal, sig)
        try:
            async with open_checkpoints(self.checkpoints) as saver:
                await self._checkpoint_to(saver, items, progress)
                await self._consume(items, progress)
        except asyncio.CancelledError:
            if self.outcome.signal is None or main is None:
                raise
            main.uncancel()
        finally:
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)
            self.outcome.seconds = time.perf_counter() - start
        return self.outcome

    async def _checkpoint_to(
        self, saver: BaseCheckpointSaver | None, items: list[WorkItem], progress: EvalProgress
    ) -> None:
        """Run every graph with ``saver`` as its checkpointer; say how many runs resume."""
        self.saver = saver
        if saver is None:
            return
        self.graphs = {m: g.copy(update={"checkpointer": saver}) for m, g in self.graphs.items()}
        resumed = await count_in_flight(saver, items, self.scope)
        if resumed:
            progress.resuming(resumed, str(self.checkpoints))

    async def _consume(self, items: list[WorkItem], progress: EvalProgress) -> None:
        progress.started(len(items))
        runner = RunnableLambda(self.run_item, name="tpo_eval_item")
        results = runner.abatch_as_completed(
            items, config={"max_concurrency": self.concurrency}, return_exceptions=True
        )
        async with contextlib.aclosing(results) as finished:
            async for index, result in finished:
                if isinstance(result, BaseException):
                    self.outcome.failed += 1
                    progress.failed(items[index], result)
                progress.advanced(self.outcome)
                if self.outcome.failed >= self.max_errors:
                    self.outcome.stopped_on_errors = True
                    return


def requests_by_role(counts: dict[str, int]) -> dict[str, dict[str, int]]:
    """``{"policy http://a": 3}`` as ``{"policy": {"http://a": 3}}``."""
    by_role: dict[str, dict[str, int]] = {}
    for key, count in sorted(counts.items()):
        role, _, url = key.partition(" ")
        by_role.setdefault(role, {})[url] = count
    return by_role


def build_graphs(
    backends: BackendSettings,
    configs: dict[str, TPOConfig],
    retry: RetryPolicy | None,
    prompts: PromptSet | str = "paper",
    rows: Mapping[str, Row] | None = None,
) -> tuple[dict[str, Any], list[Balancer]]:
    """One TPO graph per method, all on the same loaded policy and reward; and the
    balancers of the kinds of server (policy, reward) given as several URLs.

    ``rows`` (where each is, and its fields): checked for the fields the reward reads
    (a verifier's ``reference``) before any model call."""
    check_servers(backends, retry)
    run = assemble(next(iter(configs.values())), backends, retry=retry, prompts=prompts)
    fields = row_fields_of(run.reward)
    for where, row in (rows or {}).items() if fields else ():
        check_row(fields, row, where)
    graphs = {m: run.graph_for(c) for m, c in configs.items()}
    return graphs, several_server_balancers(run.policy, run.reward)


def several_server_balancers(*models: Any) -> list[Balancer]:
    """The balancers of ``models`` that spread requests over more than one server."""
    balancers = [getattr(model, "balancer", None) for model in models]
    return [b for b in balancers if isinstance(b, Balancer) and len(b.endpoints) > 1]
