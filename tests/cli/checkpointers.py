"""Checkpointers that the CLI tests name with ``tpo eval --checkpointer module:attr``."""

from __future__ import annotations

import os
from typing import Any

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

STORE_ENV = "TPO_TEST_CHECKPOINTS"


class RecordingSaver(InMemorySaver):
    """LangGraph's in-memory saver, noting the threads it was written to and asked to delete."""

    def __init__(self) -> None:
        super().__init__()
        self.written: set[str] = set()
        self.deleted: list[str] = []
        self.set_up = 0

    async def setup(self) -> None:
        """Like AsyncPostgresSaver.setup (which creates its tables): awaited before use."""
        self.set_up += 1

    def put(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        self.written.add(config["configurable"]["thread_id"])
        return super().put(config, checkpoint, metadata, new_versions)

    def delete_thread(self, thread_id: str) -> None:
        self.deleted.append(thread_id)
        super().delete_thread(thread_id)


memory = RecordingSaver()  # an instance: used as it is
not_a_saver = 42


def sqlite_from_env() -> Any:
    """An async context manager giving an AsyncSqliteSaver on ``$TPO_TEST_CHECKPOINTS``, the
    shape of ``AsyncPostgresSaver.from_conn_string(url)``."""
    return AsyncSqliteSaver.from_conn_string(os.environ[STORE_ENV])


def sync_only() -> Any:
    """A saver without async methods (a sync context manager giving SqliteSaver)."""
    return SqliteSaver.from_conn_string(":memory:")


def gives_a_dict() -> dict[str, str]:
    return {"not": "a saver"}
