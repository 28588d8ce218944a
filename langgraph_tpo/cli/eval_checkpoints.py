"""Checkpoints of ``tpo eval``'s runs in flight, so a rerun after a kill resumes them.

Each prompt x method run checkpoints after every node under a thread of its own, in an
SQLite file next to the results (``RESULTS.checkpoints.sqlite``, with the ``sqlite``
extra), in another SQLite file (``--checkpoints PATH``), or in a checkpointer the user
names (``--checkpointer module:attr``, e.g. a Postgres saver); ``--checkpoints off`` turns
them off. A rerun continues an interrupted run from its last finished node, so no finished
model call is repeated; a run that finished but whose line was not written yet is taken
from its checkpoint. A thread is deleted once its result line is written (through the
saver's public ``adelete_thread``, whichever saver it is), and the default file once every
result is in; a file or store the user named is kept.

The thread id hashes the method, the item's key and its graph input (and, in a store
the user named, which other evals may share, the results file's path): a prompt whose text
changed (same id) starts afresh rather than resuming another prompt's run. A resumed run
goes on with the current settings.

A Postgres store, for example, is a module on the user's path::

    # my_store.py; then: tpo eval data.jsonl -o out.jsonl --checkpointer my_store:saver
    import os
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    def saver():
        return AsyncPostgresSaver.from_conn_string(os.environ["TPO_PG_URL"])
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from langgraph_tpo.backends.plumbing.user_models import import_attribute
from langgraph_tpo.cli.eval_plan import WorkItem
from langgraph_tpo.errors import ConfigError
from langgraph_tpo.graph.state import TPOOutput

SUFFIX = ".checkpoints.sqlite"
DEFAULT, OFF = "auto", "off"
SQLITE_HEADER = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database file
PROBE = {"configurable": {"thread_id": "tpo-eval-probe", "checkpoint_ns": ""}}
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


@dataclass(frozen=True)
class Checkpoints:
    """Where ``tpo eval``'s runs checkpoint: an SQLite ``path``, or the user's checkpointer
    ``target`` (imported from ``spec``); ``owned``: the file is ours to remove when done."""

    path: Path | None = None
    spec: str | None = None
    target: Any = None
    owned: bool = False
    scope: str = ""  # in every thread id: the results file, for a store others may share

    def __str__(self) -> str:
        return str(self.path) if self.path is not None else f"checkpointer {self.spec}"

    def finish(self) -> None:
        """Every result is in: remove the default SQLite file (a named store is kept; its
        threads were deleted one by one)."""
        if self.owned and self.path is not None:
            remove_checkpoints(self.path)


def choose_checkpoints(
    results: Path, checkpoints: str, checkpointer: str | None
) -> Checkpoints | None:
    """``--checkpoints auto|off|PATH`` and ``--checkpointer module:attr`` checked (before
    any model call): what the runs of ``results`` checkpoint to; None for ``off``, and for
    ``auto`` without the sqlite extra. ConfigError names the bad value."""
    if checkpointer is not None:
        if checkpoints != DEFAULT:
            raise ConfigError(
                f"--checkpoints {checkpoints!r} and --checkpointer {checkpointer!r}: give one"
            )
        target = import_checkpointer(checkpointer)
        return Checkpoints(spec=checkpointer, target=target, scope=str(results.resolve()))
    if checkpoints == OFF or (checkpoints == DEFAULT and not has_sqlite()):
        return None
    if not has_sqlite():
        raise ConfigError(
            f"--checkpoints {checkpoints!r} needs the sqlite extra: pip install "
            "'langgraph-tpo[sqlite]' (or --checkpoints off, or --checkpointer module:attr)"
        )
    if checkpoints == DEFAULT:
        return Checkpoints(path=checkpoint_path(results), owned=True)
    path = Path(checkpoints).expanduser()
    why = sqlite_path_problem(path, results)
    if why:
        raise ConfigError(f"--checkpoints {checkpoints!r} {why}; give an SQLite file path")
    return Checkpoints(path=path, scope=str(results.resolve()))


def sqlite_path_problem(path: Path, results: Path) -> str:
    """Why ``path`` cannot hold the checkpoints of ``results`` ('' when it can): a
    directory, a missing directory, the results file itself, another kind of file."""
    if path.is_dir():
        return "is a directory"
    if not path.parent.is_dir():
        return f"has no directory {str(path.parent)!r}"
    if path.resolve() == results.resolve():
        return "is the results file"
    if path.is_file() and path.stat().st_size:
        with path.open("rb") as file:
            if file.read(16) != SQLITE_HEADER:
                return "is a file that is not an SQLite database"
    return ""


def import_checkpointer(spec: str) -> Any:
    """The object ``module:attr`` names: a checkpointer, or a callable that returns one
    (or an async context manager giving one, like ``AsyncPostgresSaver.from_conn_string``)."""
    target = import_attribute("--checkpointer", spec)
    if not isinstance(target, BaseCheckpointSaver) and not callable(target):
        raise ConfigError(
            f"--checkpointer {spec!r} is a {type(target).__name__}: name a LangGraph "
            "checkpointer (BaseCheckpointSaver) or a function that returns one"
        )
    return target


@contextlib.asynccontextmanager
async def open_checkpoints(
    checkpoints: Checkpoints | None,
) -> AsyncIterator[BaseCheckpointSaver | None]:
    """The checkpointer of ``checkpoints`` for the duration (None: no checkpoints)."""
    if checkpoints is None:
        yield None
    elif checkpoints.path is None:
        async with user_checkpointer(checkpoints.spec or "", checkpoints.target) as saver:
            yield saver
    else:
        async with sqlite_checkpointer(checkpoints.path) as saver:
            yield saver


@contextlib.asynccontextmanager
async def user_checkpointer(spec: str, target: Any) -> AsyncIterator[BaseCheckpointSaver]:
    """The user's checkpointer: ``target`` itself, or what calling it gives (entered when it
    is a context manager); set up (its async ``setup()``, if any) and checked to be an
    async-capable BaseCheckpointSaver."""
    made = target if isinstance(target, BaseCheckpointSaver) else _call(spec, target)
    async with contextlib.AsyncExitStack() as stack:
        if hasattr(made, "__aenter__"):
            made = await stack.enter_async_context(made)
        elif hasattr(made, "__enter__") and not isinstance(made, BaseCheckpointSaver):
            made = stack.enter_context(made)
        if not isinstance(made, BaseCheckpointSaver):
            raise ConfigError(
                f"--checkpointer {spec!r} gave a {type(made).__name__}, not a LangGraph "
                "checkpointer (BaseCheckpointSaver)"
            )
        await _set_up(spec, made)
        await _probe(spec, made)
        yield made


def _call(spec: str, factory: Any) -> Any:
    try:
        return factory()
    except Exception as exc:
        raise ConfigError(f"--checkpointer {spec!r} failed: {type(exc).__name__}: {exc}") from exc


async def _set_up(spec: str, saver: BaseCheckpointSaver) -> None:
    """Await the saver's own async ``setup()`` where it has one (AsyncPostgresSaver's
    creates its tables; it is safe to repeat)."""
    setup = getattr(saver, "setup", None)
    if not inspect.iscoroutinefunction(setup):
        return
    try:
        await setup()
    except Exception as exc:
        raise ConfigError(
            f"--checkpointer {spec!r}: setup() failed: {type(exc).__name__}: {exc}"
        ) from exc


async def _probe(spec: str, saver: BaseCheckpointSaver) -> None:
    """One async read, so a sync-only saver (SqliteSaver, PostgresSaver) is refused here
    rather than by the first run."""
    try:
        await saver.aget_tuple(PROBE)
    except NotImplementedError as exc:
        raise ConfigError(
            f"--checkpointer {spec!r}: {type(saver).__name__} has no async methods; tpo eval "
            "runs asynchronously (use e.g. AsyncSqliteSaver or AsyncPostgresSaver)"
        ) from exc


@contextlib.asynccontextmanager
async def sqlite_checkpointer(path: Path) -> AsyncIterator[BaseCheckpointSaver]:
    """The SQLite checkpointer at ``path`` for the duration."""
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


def thread_config(item: WorkItem, scope: str = "") -> dict[str, Any]:
    """The run config of ``item``'s own thread; ``scope`` (the results file, for a store
    the user named) keeps evals into other results files off each other's threads."""
    parts = [item.method, item.key, item.record.graph_input()] + ([scope] if scope else [])
    payload = json.dumps(parts, sort_keys=True, default=str)
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


async def count_in_flight(
    saver: BaseCheckpointSaver, items: list[WorkItem], scope: str = ""
) -> int:
    """How many of ``items`` have a checkpoint to resume from (threads of ``scope``)."""
    found = 0
    for item in items:
        if await saver.aget_tuple(thread_config(item, scope)) is not None:
            found += 1
    return found
