"""``tpo serve`` as a real process: flags, errors, and a dead backend answered as 503."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import openai
import pytest
from typer.testing import CliRunner

from langgraph_tpo.cli import app
from langgraph_tpo.testing.servers import free_port
from tests.cli.conftest import tpo_command

KEY = "sk-backend-secret-9876543210"
USER = [{"role": "user", "content": "Name a color."}]


class ServeProcess:
    """A running ``tpo serve``: its OpenAI base URL and its log (stdout and stderr)."""

    def __init__(self, args: Sequence[str], env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.log_path = log
        with log.open("w") as out:
            self.proc = subprocess.Popen(
                [*tpo_command(), "serve", "--port", str(self.port), *args],
                env={**os.environ, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"tpo serve exited {self.proc.returncode}:\n{self.log()[-3000:]}")
            try:
                httpx.get(f"{self.url}/models", timeout=2)
                return
            except httpx.TransportError:
                assert time.monotonic() < deadline, f"tpo serve did not start:\n{self.log()}"
                time.sleep(0.2)

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> str:
        """Stop the server (SIGTERM, then SIGKILL); its whole log."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.log()


@contextmanager
def tpo_serve(
    args: Sequence[str], tmp_path: Path, env: dict[str, str] | None = None, ready_s: float = 600
) -> Iterator[ServeProcess]:
    """``tpo serve ARGS`` on a free port, stopped at the end."""
    server = ServeProcess(args, env or {}, tmp_path / "tpo-serve.log")
    try:
        server.wait_ready(ready_s)
        yield server
    finally:
        server.stop()


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
