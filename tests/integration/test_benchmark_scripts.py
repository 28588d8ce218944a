"""The vLLM benchmarks at toy size, against the integration tests' servers.

What they check is what the full runs rely on: the direct chain sends the very requests the
graph sends (same counts, same generated text), the local prompt-token accounting matches
the server's counter, and ``tpo eval`` makes the requests TPO promises at each level.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.benchmarks.helpers import run_benchmark

if TYPE_CHECKING:
    from tests.integration.conftest import VLLMServers

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N, D = 5, 2
CHAT_PER_PROMPT = 1 + 3 * D
SEQUENCES_PER_PROMPT = N + D * (2 + N)


def server_args(servers: VLLMServers) -> list[str]:
    return [
        "--policy-url", servers.policy_url, "--reward-url", servers.reward_url,
        "--policy-model", servers.policy_model, "--reward-model", servers.reward_model,
        "--reward-tokenizer", str(servers.reward_tokenizer_path),
    ]  # fmt: skip


def test_vllm_e2e_direct_chain_repeats_the_graphs_requests(
    vllm_servers: VLLMServers, tmp_path: Path
) -> None:
    prompts = 2
    result = run_benchmark(
        "vllm_e2e", tmp_path / "e2e.json",
        "--prompts", str(prompts), "--max-tokens", "8", "--concurrency", "1", "--rounds", "1",
        *server_args(vllm_servers),
    )  # fmt: skip

    (level,) = result["levels"]
    tpo, direct = level["runs"]["tpo"], level["runs"]["direct"]
    assert tpo["chat_requests"] == direct["chat_requests"] == prompts * CHAT_PER_PROMPT
    assert tpo["sequences"] == direct["sequences"] == prompts * SEQUENCES_PER_PROMPT
    assert tpo["prompt_tokens"] == direct["prompt_tokens"]
    assert tpo["generation_tokens"] == direct["generation_tokens"] > 0  # same seeds, same text
    assert tpo["mean_best_score"] == pytest.approx(direct["mean_best_score"])
    assert tpo["classify_requests"] == direct["classify_requests"] >= prompts
    assert level["ratios"]["time"] == pytest.approx(tpo["wall_s"] / direct["wall_s"])
    assert len(tpo["round_wall_s"]) == len(direct["round_wall_s"]) == 1


def test_prompt_economy_counts_match_the_server(vllm_servers: VLLMServers, tmp_path: Path) -> None:
    result = run_benchmark(
        "prompt_economy", tmp_path / "economy.json",
        "--prompts", "2", "--concurrency", "1", "--max-tokens", "8", "--rounds", "1",
        *server_args(vllm_servers),
    )  # fmt: skip

    for variant in ("paper", "compact", "direct"):
        run = result["results"][variant]
        assert run["requests_per_query"] == CHAT_PER_PROMPT
        assert 0 < run["computed_prompt_tokens_per_query"] <= run["prompt_tokens_per_query"]
        assert run["counted_prompt_tokens_per_query"] == pytest.approx(
            run["prompt_tokens_per_query"]
        ), variant
        kinds = result["per_kind"][variant]
        assert {k: v["calls_per_query"] for k, v in kinds.items()} == {
            "sample": 1, "loss": D, "gradient": D, "update": D,
        }  # fmt: skip
        assert sum(v["share"] for v in kinds.values()) == pytest.approx(1.0)


def test_dataset_throughput_levels_and_plot(vllm_servers: VLLMServers, tmp_path: Path) -> None:
    out = tmp_path / "throughput.json"
    prompts = 2
    result = run_benchmark(
        "dataset_throughput", out,
        "--prompts", str(prompts), "--concurrency", "1", "2", "--max-tokens", "8",
        *server_args(vllm_servers),
    )  # fmt: skip

    assert [lv["concurrency"] for lv in result["levels"]] == [1, 2]
    for level in result["levels"]:
        assert level["prompts"] == prompts
        assert level["chat_requests"] == prompts * CHAT_PER_PROMPT
        assert level["prompts_per_min"] == pytest.approx(60 * prompts / level["seconds"])
        assert level["ceiling_generated_tokens_per_s"] > 0
    assert out.with_suffix(".png").stat().st_size > 0


def test_reward_paths_counts_requests_per_step(vllm_servers: VLLMServers, tmp_path: Path) -> None:
    result = run_benchmark(
        "reward_paths", tmp_path / "reward_paths.json",
        "--rounds", "2", "--num-samples", "3",
        "--reward-url", vllm_servers.reward_url, "--reward-model", vllm_servers.reward_model,
        "--reward-tokenizer", str(vllm_servers.reward_tokenizer_path),
    )  # fmt: skip

    paths = result["results"]["paths"]
    assert paths["batched"]["requests_per_step"] == paths["batched"]["client_requests_per_step"]
    assert paths["batched"]["requests_per_step"] == 1
    assert paths["messages"]["requests_per_step"] == 3  # one per candidate
    assert all(len(paths[p]["step_ms"]) == 2 for p in ("batched", "messages"))


def test_in_process_vllm_runs_alone_and_at_once_send_the_same_requests(tmp_path: Path) -> None:
    runs, n, d = 2, 2, 1
    result = run_benchmark(
        "vllm_inprocess", tmp_path / "inprocess.json",
        "--runs", str(runs), "-n", str(n), "-d", str(d), "--max-tokens", "8", "--rounds", "1",
        timeout=1500,
    )  # fmt: skip

    (measured,) = result["rounds"]
    for phase in ("alone", "together"):
        assert measured[phase]["requests"] == runs * (1 + 3 * d)
        assert measured[phase]["sequences"] == runs * (n + d * (2 + n))
        assert measured[phase]["generation_tokens"] > 0
    summary = result["summary"]
    assert summary["one_run_s"] == pytest.approx(measured["alone"]["wall_s"] / runs)
    assert summary["ratio_together_vs_one"] == pytest.approx(
        measured["together"]["wall_s"] / summary["one_run_s"]
    )
