"""Interrupting a running ``tpo eval`` process: the CLI tests (fake models) and the
reliability tests (real HTTP servers) stop it the same way."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path


def wait_for_lines(path: Path, count: int, timeout: float = 90) -> None:
    """Wait until ``path`` holds ``count`` complete lines."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} did not reach {count} lines in {timeout}s")


def interrupt_after(
    proc: subprocess.Popen[str], out: Path, lines: int, sig: signal.Signals
) -> str:
    """Send ``sig`` once ``out`` has ``lines`` results; check the exit status (128 + sig
    and a clean message, or killed); return stderr."""
    try:
        wait_for_lines(out, lines)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == 128 + sig, err
        assert f"interrupted by {sig.name}" in err and "rerun the same command to resume" in err
        assert "Traceback" not in err
    return err
