"""Helper for test_langgraph_use: run or resume a TPO graph on a SQLite checkpointer.

argv: DB_PATH MODE where MODE is "start-and-die" (the process kills itself during the first
update) or "resume". Prints the policy's call counts as JSON on success.
"""

import json
import os
import sqlite3
import sys

from langgraph.checkpoint.sqlite import SqliteSaver

from langgraph_tpo import TPOConfig, create_tpo_graph
from langgraph_tpo.fakes import FakeBatchReward, FakeNPolicy


class DiesOnUpdate(FakeNPolicy):
    def _draw(self, kind, messages, n, kwargs):
        if kind == "update":
            os._exit(9)  # as if the process were killed
        return super()._draw(kind, messages, n, kwargs)


db, mode = sys.argv[1], sys.argv[2]
policy = DiesOnUpdate() if mode == "start-and-die" else FakeNPolicy()
reward = FakeBatchReward()
saver = SqliteSaver(sqlite3.connect(db, check_same_thread=False))
graph = create_tpo_graph(
    policy, reward, TPOConfig(num_samples=3, max_iterations=2), checkpointer=saver
)
config = {"configurable": {"thread_id": "killed"}}
out = graph.invoke({"query": "q"} if mode == "start-and-die" else None, config)
print(
    json.dumps(
        {
            "calls": {k: v[1] for k, v in policy.counts.items()},
            "reward_batches": len(reward.batches),
            "candidates": len(out["candidates"]),
            "stop_reason": out["stop_reason"],
        }
    )
)
