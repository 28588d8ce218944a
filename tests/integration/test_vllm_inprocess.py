"""In-process vLLM (``--policy-engine vllm``) for real: vLLM's async engine on CPU serving
SmolLM2 inside the TPO process, scored by the tiny reward model in-process.

vLLM and this package live together in the venv of ``ensure_tpo_vllm_venv`` (the pinned
vLLM CPU venv plus langgraph-tpo's own dependencies), so the run happens in a subprocess
with that venv's python (``vllm_inprocess_run.py``); the engine's own Prometheus counters
say how many requests and sequences it got.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import psutil
import pytest

from testsupport import build_smollm2_hf_dir, build_tiny_reward_model
from testsupport.servers import DEFAULT_ENV
from testsupport.vllm_env import ensure_tpo_vllm_venv

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCRIPT = Path(__file__).with_name("vllm_inprocess_run.py")
N, D = 3, 2
RUNS_AT_ONCE = 3
REQUESTS = 1 + 3 * D  # sample, then loss + gradient + update per iteration
SEQUENCES = N + D * (2 + N)
RUN_TIMEOUT_S = 1500


def engine_env() -> dict[str, str]:
    """The servers' environment (KV cache size, offline hub), without the dev venv's paths."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, **DEFAULT_ENV}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    python = ensure_tpo_vllm_venv()
    out = tmp_path_factory.mktemp("vllm-inprocess") / "report.json"
    cmd = [
        str(python), str(SCRIPT), str(build_smollm2_hf_dir()), str(build_tiny_reward_model()),
        str(out), str(N), str(D),
    ]  # fmt: skip
    proc = subprocess.run(
        cmd, env=engine_env(), capture_output=True, text=True, timeout=RUN_TIMEOUT_S
    )
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-6000:]}")
    return {**json.loads(out.read_text()), "stderr": proc.stderr, "stdout": proc.stdout}


def test_the_factory_builds_the_in_process_engine(report: dict[str, Any]) -> None:
    assert report["policy_type"] == "VLLMChatModel"
    assert "wrote" in report["stdout"]  # vLLM's logs go to stderr, stdout stays the program's


def test_a_run_sends_each_step_as_one_request_with_n(report: dict[str, Any]) -> None:
    assert report["run_counts"] == {"requests": REQUESTS, "sequences": SEQUENCES}
    usage = report["run"]["usage"]
    assert (usage["requests"], usage["generations"]) == (REQUESTS, SEQUENCES)
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert len(report["run"]["texts"]) == N * (D + 1)


def test_seeded_runs_repeat_under_the_sync_api(report: dict[str, Any]) -> None:
    assert report["sync_counts"] == {"requests": REQUESTS, "sequences": SEQUENCES}
    assert report["sync_run"]["texts"] == report["run"]["texts"]
    assert len(set(report["run"]["texts"][:N])) > 1  # N different samples, not one repeated


def test_concurrent_runs_are_in_the_engine_at_once(report: dict[str, Any]) -> None:
    counts = report["concurrent_counts"]
    assert counts == {"requests": RUNS_AT_ONCE * REQUESTS, "sequences": RUNS_AT_ONCE * SEQUENCES}
    # vLLM tracks each of a request's n samples as a request of its own: more than N
    # unfinished means the requests of several runs were scheduled together
    assert report["concurrent"]["max_in_flight"] > N
    for result in report["concurrent"]["results"]:
        assert len(result["texts"]) == N * (D + 1)


def test_the_judge_reads_logprobs_equal_to_transformers(report: dict[str, Any]) -> None:
    judge = report["judge"]
    assert judge["methods"] == ["logprobs", "logprobs"]
    # the chat template as vLLM's server applies it: the prompt the transformers template gives
    assert judge["vllm_prompt_tokens"] == judge["template_prompt_tokens"]
    assert judge["vllm_text"] == judge["hf_text"]  # greedy: the same reply
    vllm_first = judge["vllm_logprobs"]["content"][0]
    hf_first = judge["hf_logprobs"]["content"][0]
    assert vllm_first["token"] == hf_first["token"]
    assert len(vllm_first["top_logprobs"]) == 5
    assert [t["token"] for t in vllm_first["top_logprobs"]] == [
        t["token"] for t in hf_first["top_logprobs"]
    ]
    for ours, theirs in zip(vllm_first["top_logprobs"], hf_first["top_logprobs"], strict=True):
        assert ours["logprob"] == pytest.approx(theirs["logprob"], abs=1e-3)


def test_the_engine_shuts_down_at_exit(report: dict[str, Any]) -> None:
    assert report["engine_pids"], "the engine core runs in a child process"
    alive = [
        pid
        for pid in report["engine_pids"]
        if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    ]
    assert alive == []
    assert "EngineDeadError" not in report["stderr"]
    assert "Traceback" not in report["stderr"]
