"""``tpo serve`` as a real process: flags, errors, and a dead backend answered as 503."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
from langchain_openai import ChatOpenAI
from typer.testing import CliRunner

from langgraph_tpo.cli import app
from tests.serve.helpers import marked_prompt_set, tpo_serve
from testsupport.fake_backends import fake_backend_env
from testsupport.servers import free_port

KEY = "sk-backend-secret-9876543210"
USER = [{"role": "user", "content": "Name a color."}]


def dead_policy_flags() -> list[str]:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    return [
        "--policy-url",
        dead,
        "--policy-model",
        "smollm2",
        "--judge",
        "--retries",
        "0",
        "--api-key",
        KEY,
    ]


def test_bad_settings_exit_with_one_red_line() -> None:
    result = CliRunner().invoke(app, ["serve", "-n", "0", *dead_policy_flags()])
    assert result.exit_code == 1 and "num_samples" in result.output
    assert "Traceback" not in result.output and KEY not in result.output
    assert CliRunner().invoke(app, ["serve", "--max-concurrency", "0"]).exit_code == 2
    assert CliRunner().invoke(app, ["serve", "--max-queue", "-1"]).exit_code == 2
    assert CliRunner().invoke(app, ["serve", "--queue-timeout", "0"]).exit_code == 2


def test_serve_answers_and_reports_a_dead_backend_as_503(tmp_path: Path) -> None:
    env = {"TPO_SERVER_API_KEY": "server-key-1"}
    with tpo_serve([*dead_policy_flags(), "-n", "2", "-d", "1"], tmp_path, env) as server:
        url = server.url
        client = openai.OpenAI(base_url=url, api_key="server-key-1", max_retries=0)
        assert [m.id for m in client.models.list()] == ["tpo", "tpo-revision", "tpo-bon"]
        with pytest.raises(openai.BadRequestError) as bad:
            client.chat.completions.create(
                model="tpo", messages=USER, extra_body={"tpo": {"max_iterations": -1}}
            )
        assert bad.value.param == "tpo.max_iterations"
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=url, api_key="nope", max_retries=0).models.list()
        with pytest.raises(openai.InternalServerError) as down:
            client.chat.completions.create(model="tpo", messages=USER)
        assert down.value.status_code == 503 and "policy backend unavailable" in down.value.message
        assert KEY not in down.value.response.text
        log = server.stop()
    assert "TPO Chat Completions API on" in log and "N=2 D=1" in log
    assert 'POST /v1/chat/completions HTTP/1.1" 503' in log
    assert KEY not in log and "server-key-1" not in log and "Traceback" not in log


def test_serve_runs_the_prompt_set_file_it_is_given(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(marked_prompt_set("MARK-7").to_yaml(), encoding="utf-8")
    with tpo_serve(
        ["--prompts", str(path), "-n", "2", "-d", "1"], tmp_path, fake_backend_env()
    ) as server:
        client = openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0)
        reply = client.chat.completions.create(model="tpo", messages=USER)
        log = server.stop()
    assert reply.choices[0].message.content.startswith("answer:")
    assert "prompts=marked" in log


def test_serve_with_a_prompt_set_that_is_not_there_is_one_red_line() -> None:
    result = CliRunner().invoke(app, ["serve", "--prompts", "nosuch.yaml", *dead_policy_flags()])
    assert result.exit_code == 1 and "neither a built-in prompt set" in result.output
    assert "Traceback" not in result.output


def test_stop_over_a_real_tpo_serve_with_the_sdk_and_chat_openai(tmp_path: Path) -> None:
    # the fake backends answer "answer: good1 good2 ... goodK" (K >= 3 in samples) and the
    # reward counts words: cut before "good3", the best answer is the first two words
    args = ["-n", "3", "-d", "1", "--max-queue", "2", "--queue-timeout", "30"]
    with tpo_serve(args, tmp_path, fake_backend_env()) as server:
        client = openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0)
        reply = client.chat.completions.create(model="tpo", messages=USER, stop=["good3"])
        assert reply.choices[0].message.content == "answer: good1 good2 "
        assert reply.choices[0].finish_reason == "stop"
        assert reply.model_extra["tpo"]["score"] == 3.0  # the reward scored the cut text
        stream = client.chat.completions.create(
            model="tpo", messages=USER, stop="good3", stream=True
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == (
            "answer: good1 good2 "
        )
        chat = ChatOpenAI(base_url=server.url, api_key="unused", model="tpo", stop=["good2"])
        assert chat.invoke("Name a color.").content == "answer: good1 "
        assert chat.invoke("Name a color.", stop=[" good"]).content == "answer:"
        assert "".join(c.content for c in chat.stream("Name a color.")) == "answer: good1 "
        log = server.stop()
    assert "max_concurrency 4, queue 2 for 30s" in " ".join(log.split())
