"""LangGraph Studio / Agent Server: drive `langgraph dev` with langgraph_sdk."""

import asyncio
import os

from langgraph_sdk import get_client


async def main() -> None:
    client = get_client(url=os.environ.get("LANGGRAPH_URL", "http://127.0.0.1:2024"))
    thread = await client.threads.create()
    out = await client.runs.wait(
        thread["thread_id"],
        "tpo",
        input={"query": "How do I take care of a wooden table?"},
        context={"num_samples": 2, "max_iterations": 1, "max_tokens": 32},  # per-run settings
    )
    print(out["response"], out["score"], out["stop_reason"])
    history = await client.threads.get_history(thread["thread_id"])
    print(len(history), "checkpoints")


asyncio.run(main())
