"""Benchmark 11 at toy size on the instant fakes: both modes run, alternately, and the
summary is computed from the rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.benchmarks.helpers import run_benchmark

pytestmark = pytest.mark.slow


def test_checkpoint_benchmark_alternates_modes_and_sums_up(tmp_path: Path) -> None:
    result = run_benchmark(
        "eval_checkpoints", tmp_path / "ckpt.json",
        "--fakes", "--prompts", "100", "--rounds", "2", "-c", "4",
    )  # fmt: skip
    runs = result["runs"]
    assert [r["checkpoints"] for r in runs] == ["auto", "off", "off", "auto"]  # ABBA
    assert all(r["seconds"] > 0 and r["client_cpu_s"] > 0 for r in runs)
    wall = result["median_seconds"]
    assert result["overhead_percent"] == pytest.approx(100 * (wall["auto"] / wall["off"] - 1))
