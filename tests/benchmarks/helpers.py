"""Run a benchmark script the way its documentation says, and read the JSON it writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_benchmark(name: str, out: Path, *args: str, timeout: float = 900) -> dict[str, Any]:
    """``python -m benchmarks.NAME ... --out OUT`` from the repository root; its JSON."""
    cmd = [sys.executable, "-m", f"benchmarks.{name}", *args, "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    assert f"wrote {out}" in proc.stdout
    return json.loads(out.read_text())
