"""The benchmarks that need no vLLM server: graph overhead and the in-process CPU backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.benchmarks.helpers import run_benchmark

pytestmark = pytest.mark.slow


def test_graph_overhead_times_every_variant(tmp_path: Path) -> None:
    result = run_benchmark("graph_overhead", tmp_path / "overhead.json", "--repeats", "3")

    ms, median = result["ms_per_iteration"], result["median_ms_per_iteration"]
    assert set(ms) == set(median) == {"floor", "floor_calls", "tpo", "tpo_sqlite"}
    assert all(0 < ms[name] <= median[name] for name in ms)  # best of 3 <= median of 3
    assert result["ratio_to_floor"] == pytest.approx(ms["tpo"] / ms["floor"])
    assert result["target_met"] == (result["ratio_to_floor"] <= 2.0)
    assert result["paired_median_ratio_to_floor"] > 1.0  # TPO's loop does more than the floor's
    assert (result["n"], result["d"]) == (5, 20)


def test_cpu_backend_compares_equal_work_and_shares_one_model(tmp_path: Path) -> None:
    max_tokens = 4
    result = run_benchmark(
        "cpu_backend", tmp_path / "cpu.json",
        "--skip-run", "--max-tokens", str(max_tokens), "--repeats", "1",
    )  # fmt: skip

    expected = result["settings"]["n"] * max_tokens
    query, update = result["sampling"], result["sampling_update_prompt"]
    assert update["prompt_tokens"] > 5 * query["prompt_tokens"]  # an update-sized prompt
    for sampling in (query, update):
        for variant in ("batched", "sequential"):  # N samples either way; EOS may end one early
            assert 0 < sampling[variant]["tokens"] <= expected, variant
        assert sampling["speedup_tok_s"] == pytest.approx(
            sampling["batched"]["tok_s"] / sampling["sequential"]["tok_s"]
        )
    load = result["load"]
    assert load["judge_is_policy"] and load["judge_shares_model"]
    assert load["load_causal_lm_shares_model"]
    assert load["paths"]["gguf_dequantize_s"] > 0 and load["paths"]["cached_s"] > 0
    assert result["tpo_run"] is None  # --skip-run


def test_cli_startup_times_both_commands(tmp_path: Path) -> None:
    result = run_benchmark("cli_startup", tmp_path / "cli.json", "--repeats", "1")
    assert set(result["results"]) == {"tpo --help", "tpo run --help"}
    for times in result["results"].values():
        assert 0 < times["wall_min_s"] <= times["wall_median_s"] and times["cpu_median_s"] > 0
    assert result["target_met"] == (result["results"]["tpo --help"]["wall_median_s"] < 1.0)


def test_dataset_scale_reports_cost_memory_and_rerun_per_size(tmp_path: Path) -> None:
    result = run_benchmark("dataset_scale", tmp_path / "scale.json", "--sizes", "12", "-d", "1")
    [row] = result["rows"]
    assert row["prompts"] == 12 and row["peak_rss_mb"] > 0
    assert row["first_run_s"] > 0 and row["rerun_skip_s"] > 0 and row["results_mb"] >= 0
