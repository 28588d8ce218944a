"""``langgraph dev`` serves the Chat Completions route of langgraph.json beside the
Assistants API (embedded CPU default)."""

from __future__ import annotations

import httpx
import openai
import pytest

pytestmark = pytest.mark.slow

TINY = {"num_samples": 2, "max_iterations": 1, "max_tokens": 12, "seed": 1}
USER = [{"role": "user", "content": "Name a color."}]


def test_langgraph_dev_serves_chat_completions(studio_url: str) -> None:
    client = openai.OpenAI(base_url=f"{studio_url}/v1", api_key="unused", max_retries=0,
                           timeout=600)  # fmt: skip
    assert [m.id for m in client.models.list()] == ["tpo", "tpo-revision", "tpo-bon"]
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="tpo", messages=USER, extra_body={"tpo": {"n": 1}})
    assert bad.value.param == "tpo.n"
    reply = client.chat.completions.create(model="tpo", messages=USER, extra_body={"tpo": TINY})
    tpo = reply.model_extra["tpo"]
    assert reply.choices[0].message.content.strip() and tpo["stop_reason"] == "max_iterations"
    assert len(tpo["best_scores"]) == 2
    body = {"model": "tpo-bon", "messages": USER, "stream": True, "tpo": TINY}
    with httpx.stream("POST", f"{studio_url}/v1/chat/completions", json=body, timeout=600) as r:
        lines = [line for line in r.iter_lines() if line]
    assert lines[0].startswith(": tpo run") and lines[-1] == "data: [DONE]"
    assert httpx.get(f"{studio_url}/ok").status_code == 200  # the LangGraph API is still there
