"""Run a vLLM OpenAI-compatible server as a subprocess for tests.

The server runs in its own process group (vLLM forks engine workers), logs to a file, and is
stopped by signalling the whole group: SIGTERM, then SIGKILL. ``stop`` is idempotent and is
also registered with :mod:`atexit`, so an interrupted test session does not leak servers.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Literal

import httpx

Runner = Literal["generate", "pooling"]
API_SERVER_MODULE = "vllm.entrypoints.openai.api_server"
# Seeded sampling with chunked prefill crashes vLLM-CPU ("CPU Generator does not use offset").
# float32: vLLM picks float16 for a float32 checkpoint, which is very slow on CPUs without
# AVX512-FP16 and loses reward parity with transformers. Eager mode skips a 30-90 s
# torch.compile warm-up that small test models do not need. Later ``extra_args`` override.
DEFAULT_ARGS = (
    "--no-enable-chunked-prefill",
    "--max-num-batched-tokens", "8192",
    "--dtype", "float32",
    "--enforce-eager",
)  # fmt: skip
DEFAULT_ENV = {
    "VLLM_CPU_KVCACHE_SPACE": "2",
    "HF_HUB_OFFLINE": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
}


_LABEL_RE = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')
_RUNNING: dict[int, VLLMServer] = {}  # started by this process and not stopped yet


class VLLMServerError(RuntimeError):
    """The vLLM server process died or did not become ready; the message has its log tail."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


MetricSample = tuple[str, dict[str, str], float]


def _parse_labels(text: str) -> dict[str, str]:
    """``a="x",b="y"`` to a dict, with ``\\"`` and ``\\\\`` unescaped in values."""
    labels: dict[str, str] = {}
    for match in _LABEL_RE.finditer(text):
        labels[match.group(1)] = match.group(2).replace('\\"', '"').replace("\\\\", "\\")
    return labels


def parse_prometheus_samples(text: str) -> list[MetricSample]:
    """Prometheus text exposition to ``(name, labels, value)`` samples (NaNs skipped)."""
    samples: list[MetricSample] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        labels: dict[str, str] = {}
        if "{" in line:
            name, rest = line.split("{", 1)
            label_text, _, rest = rest.rpartition("}")
            labels = _parse_labels(label_text)
        else:
            name, _, rest = line.partition(" ")
        fields = rest.split()
        try:
            value = float(fields[0])
        except (IndexError, ValueError):
            continue
        if not math.isnan(value):
            samples.append((name.strip(), labels, value))
    return samples


def parse_prometheus(text: str, match: Mapping[str, str] | None = None) -> dict[str, float]:
    """``{metric name: value summed over its label sets}``, optionally only sets with ``match``."""
    totals: dict[str, float] = {}
    for name, labels, value in parse_prometheus_samples(text):
        if match and any(labels.get(key) != want for key, want in match.items()):
            continue
        totals[name] = totals.get(name, 0.0) + value
    return totals


class ServerURLs:
    """The URLs of a server process listening on ``host``:``port``."""

    host: str
    port: int

    @property
    def base_url(self) -> str:
        """The server root, e.g. ``http://127.0.0.1:8000``."""
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """The OpenAI-compatible API root, ``base_url + "/v1"``."""
        return self.base_url + "/v1"


class VLLMServer(ServerURLs):
    """A vLLM OpenAI API server subprocess on a free loopback port.

    Use as a context manager (starts and waits until ready), or call :meth:`start`,
    :meth:`wait_ready` and :meth:`stop` yourself, e.g. to start several servers at once.
    """

    def __init__(
        self,
        python: Path | str,
        model: Path | str,
        served_name: str,
        *,
        runner: Runner = "generate",
        extra_args: Sequence[str] = (),
        port: int | None = None,
        host: str = "127.0.0.1",
        log_path: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.python = str(python)
        self.model = str(model)
        self.served_name = served_name
        self.runner = runner
        self.extra_args = list(extra_args)
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.log_path = (
            log_path or Path(tempfile.gettempdir()) / f"vllm-{served_name}-{self.port}.log"
        )
        self.env = dict(env or {})
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    @staticmethod
    def running() -> list[VLLMServer]:
        """Servers this process started that are still running (test fixtures use it to
        share one server pair instead of starting another)."""
        return [s for s in _RUNNING.values() if s.process is not None and s.process.poll() is None]

    def command(self) -> list[str]:
        """The command line that starts the server."""
        return [
            self.python, "-m", API_SERVER_MODULE,
            "--model", self.model,
            "--served-model-name", self.served_name,
            "--host", self.host,
            "--port", str(self.port),
            "--runner", self.runner,
            *DEFAULT_ARGS,
            *self.extra_args,
        ]  # fmt: skip

    def _environment(self) -> dict[str, str]:
        env = {**os.environ, **DEFAULT_ENV, **self.env}
        for key in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"):
            env.pop(key, None)  # the dev venv's paths must not leak into vLLM's venv
        return env

    def start(self) -> VLLMServer:
        """Launch the server process in its own process group; returns without waiting."""
        if self.process is not None:
            return self
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=self._environment(),
            start_new_session=True,
        )
        atexit.register(self.stop)
        _RUNNING[id(self)] = self
        return self

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the server log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _fail(self, why: str) -> VLLMServerError:
        return VLLMServerError(
            f"vLLM server {self.served_name!r} ({self.model}) {why}; log {self.log_path}:\n"
            f"{self.log_tail()}"
        )

    def is_healthy(self) -> bool:
        """True when ``GET /health`` answers 200."""
        try:
            return httpx.get(self.base_url + "/health", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout: float = 300.0, poll: float = 1.0) -> None:
        """Block until ``/health`` answers 200; fail early with the log tail if the process dies."""
        if self.process is None:
            raise VLLMServerError(f"vLLM server {self.served_name!r} was never started")
        deadline = time.monotonic() + timeout
        while True:
            code = self.process.poll()
            if code is not None:
                raise self._fail(f"exited with code {code} before becoming ready")
            if self.is_healthy():
                return
            if time.monotonic() >= deadline:
                self.stop()
                raise self._fail(f"was not ready after {timeout:.0f}s")
            time.sleep(poll)

    def stop(self, grace: float = 15.0) -> None:
        """Stop the whole process group (SIGTERM, then SIGKILL after ``grace`` s). Idempotent."""
        process, self.process = self.process, None
        _RUNNING.pop(id(self), None)
        if process is not None:
            _signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait(timeout=grace)
            _signal_group(process.pid, signal.SIGKILL)  # engine workers left behind, if any
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        atexit.unregister(self.stop)

    def metrics(self, match: Mapping[str, str] | None = None) -> dict[str, float]:
        """``GET /metrics`` parsed: each metric name summed over its label sets.

        With ``match`` (e.g. ``{"handler": "/v1/chat/completions"}``) only label sets that
        have those label values count.
        """
        response = httpx.get(self.base_url + "/metrics", timeout=10.0)
        response.raise_for_status()
        return parse_prometheus(response.text, match)

    def __enter__(self) -> VLLMServer:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
