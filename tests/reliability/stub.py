"""Start, kill and restart ``stub_server.py`` processes, and read what reached them."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from testsupport.servers import ServerURLs, free_port

SCRIPT = Path(__file__).with_name("stub_server.py")
READY_TIMEOUT_S = 20.0


class StubServer(ServerURLs):
    """One stub server process on a fixed loopback port, restartable on that port."""

    def __init__(self, workdir: Path, name: str, config: dict[str, Any] | None = None) -> None:
        self.name = name
        self.workdir = workdir
        self.host = "127.0.0.1"
        self.port = free_port(self.host)
        self.config: dict[str, Any] = dict(config or {})
        self.log_path = workdir / f"{name}-requests.jsonl"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, config: dict[str, Any] | None = None) -> StubServer:
        """Start the process (with ``config`` when given) and wait for ``/health``."""
        if config is not None:
            self.config = dict(config)
        self.starts += 1
        config_path = self.workdir / f"{self.name}-config-{self.starts}.json"
        config_path.write_text(json.dumps(self.config))
        stderr = (self.workdir / f"{self.name}-stderr.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, str(SCRIPT), "--port", str(self.port), "--config", str(config_path),
             "--log", str(self.log_path)],
            stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr,
        )  # fmt: skip
        stderr.close()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"stub {self.name} exited: {self.stderr_tail()}")
            try:
                if httpx.get(self.base_url + "/health", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"stub {self.name} not ready in {READY_TIMEOUT_S}s")

    def stderr_tail(self) -> str:
        """The end of the server's stderr (for failure messages)."""
        path = self.workdir / f"{self.name}-stderr.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the process (a crash: no cleanup, open connections dropped)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.wait_dead()

    def wait_dead(self, timeout: float = 30.0) -> None:
        """Block until the process has exited (e.g. after a ``die`` fault)."""
        if self.process is not None:
            self.process.wait(timeout=timeout)

    def alive(self) -> bool:
        """True while the server process runs."""
        return self.process is not None and self.process.poll() is None

    def configure(self, config: dict[str, Any]) -> StubServer:
        """Give the running server new behaviour (fault counters reset); start it if dead."""
        self.config = dict(config)
        if not self.alive():
            return self.start()
        httpx.post(self.base_url + "/_config", json=self.config, timeout=10).raise_for_status()
        return self

    def reset(self) -> StubServer:
        """Healthy behaviour and an empty request log, for the next test."""
        self.configure({})
        self.log_path.write_bytes(b"")
        return self

    def restart_after_death(
        self, delay: float, config: dict[str, Any] | None = None
    ) -> threading.Thread:
        """In a background thread: wait until the process dies, sleep ``delay``, restart.

        Returns the thread; join it to make sure the restart happened.
        """

        def run() -> None:
            self.wait_dead(timeout=120)
            time.sleep(delay)
            self.start(config)

        thread = threading.Thread(target=run, name=f"restart-{self.name}", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        """Stop for good (teardown)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def requests(self, path: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
        """Every logged request (over all restarts), optionally of one path and kind."""
        if not self.log_path.exists():
            return []
        records = [json.loads(line) for line in self.log_path.read_text().splitlines()]
        return [
            r
            for r in records
            if (path is None or r["path"] == path) and (kind is None or r["kind"] == kind)
        ]

    def count(self, path: str | None = None, kind: str | None = None) -> int:
        """How many requests (of ``path`` and ``kind``) reached the server."""
        return len(self.requests(path, kind))
