"""Checkpoints of ``tpo eval``'s runs in flight, so a rerun after a kill resumes them.

Each prompt x method run checkpoints after every node under a thread of its own, in an
SQLite file next to the results (``RESULTS.checkpoints.sqlite``, with the ``sqlite``
extra). A rerun continues an interrupted run from its last finished node, so no finished
model call is repeated; a run that finished but whose line was not written yet is taken
from its checkpoint. A thread is deleted once its result line is written, and the file
once every result is in.

The thread id hashes the method, the item's key and its graph input: a prompt whose text
changed (same id) starts afresh rather than resuming another prompt's run. A resumed run
goes on with the current settings.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from langgraph_tpo.cli.eval_plan import WorkItem
from langgraph_tpo.graph.state import TPOOutput

SUFFIX = ".checkpoints.sqlite"
OUTPUT_KEYS = frozenset(TPOOutput.__annotations__)


def checkpoint_path(results: Path) -> Path:
    """Where the runs of ``results`` checkpoint: beside it, named after it."""
    return results.with_name(results.name + SUFFIX)


def has_sqlite() -> bool:
    """Whether the ``sqlite`` extra (langgraph-checkpoint-sqlite) is installed."""
    try:
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver  # noqa: F401
    except ImportError:
        return False
    return True


@contextlib.asynccontextmanager
async def open_checkpoints(path: Path | None) -> AsyncIterator[BaseCheckpointSaver | None]:
    """The SQLite checkpointer at ``path`` for the duration (None: no checkpoints)."""
    if path is None or not has_sqlite():
        yield None
        return
    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    async with aiosqlite.connect(str(path)) as conn:
        # WAL (the saver's own setting) with synchronous=NORMAL: a commit survives the
        # process being killed, without an fsync per checkpoint (only a power loss may
        # drop the last few, and then those nodes run again).
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=NORMAL")
        yield AsyncSqliteSaver(conn)


def remove_checkpoints(path: Path) -> None:
    """Delete the checkpoint file (and SQLite's side files) once nothing is in flight."""
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
        file.unlink(missing_ok=True)


def thread_config(item: WorkItem) -> dict[str, Any]:
    """The run config of ``item``'s own thread."""
    payload = json.dumps(
        [item.method, item.key, item.record.graph_input()], sort_keys=True, default=str
    )
    digest = hashlib.sha256(payload.encode()).hexdigest()[:32]
    return {"configurable": {"thread_id": f"{item.method}-{digest}"}}


async def run_or_resume(graph: Any, item: WorkItem, config: dict[str, Any]) -> dict[str, Any]:
    """``item`` run on its thread: continued from its last checkpoint when one is in
    flight, taken as is when it finished, else started."""
    snapshot = await graph.aget_state(config)
    if snapshot.next:
        return await graph.ainvoke(None, config)
    if snapshot.values.get("stop_reason"):
        return {k: v for k, v in snapshot.values.items() if k in OUTPUT_KEYS}
    return await graph.ainvoke(item.record.graph_input(), config)


async def count_in_flight(saver: BaseCheckpointSaver, items: list[WorkItem]) -> int:
    """How many of ``items`` have a checkpoint to resume from."""
    found = 0
    for item in items:
        if await saver.aget_tuple(thread_config(item)) is not None:
            found += 1
    return found
