"""``tpo serve`` on the embedded CPU default (SmolLM2 in-process, judged by itself)."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest

from tests.serve.helpers import tpo_serve

pytestmark = pytest.mark.slow


def test_tpo_serve_on_the_embedded_default(tmp_path: Path) -> None:
    args = ["-n", "2", "-d", "1", "--max-tokens", "16", "--seed", "1"]  # no backend flags
    with tpo_serve(args, tmp_path, ready_s=600) as server:
        client = openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0, timeout=600)
        reply = client.chat.completions.create(
            model="tpo", messages=[{"role": "user", "content": "Name a color."}]
        )
        tpo = reply.model_extra["tpo"]
        assert reply.choices[0].message.content.strip()
        assert tpo["iterations"] == 1 and tpo["stop_reason"] == "max_iterations"
        assert reply.usage.completion_tokens > 0
        body = {"model": "tpo-bon", "messages": [{"role": "user", "content": "Say hi."}],
                "stream": True}  # fmt: skip
        with httpx.stream("POST", f"{server.url}/chat/completions", json=body, timeout=600) as r:
            lines = [line for line in r.iter_lines() if line]
        assert lines[0].startswith(": tpo run") and lines[-1] == "data: [DONE]"
        # two new tokens cannot hold an answer and its end: cut at max_tokens
        cut = client.chat.completions.create(
            model="tpo-bon", messages=[{"role": "user", "content": "Describe the sea."}],
            max_tokens=2,
        )  # fmt: skip
        assert cut.choices[0].finish_reason == "length" and cut.choices[0].message.content
        # stop strings: the in-process model stops there, the answer never holds them
        stopped = client.chat.completions.create(
            model="tpo", messages=[{"role": "user", "content": "Describe the sea."}],
            stop=[".", "\n", ","], max_tokens=24,
        )  # fmt: skip
        text = stopped.choices[0].message.content
        assert text.strip() and not {".", "\n", ","} & set(text)
        assert stopped.choices[0].finish_reason in ("stop", "length")
        log = server.stop()
    assert "'embedded': True" in log
