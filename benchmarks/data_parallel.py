"""Benchmark 12: one vLLM ``--data-parallel-size 2`` deployment vs two servers behind the
project's balancer, on the same prompts (issue 25, item 6).

Both layouts give the policy the machine's two cores, one per replica: the data-parallel
deployment (one URL: an API server, vLLM's DP coordinator and two engine cores, bound with
``VLLM_CPU_OMP_THREADS_BIND=0|1``) and two separate servers (``--policy-url`` twice, bound
to core 0 and core 1). One pooling reward server (tiny-rm, on the last core) serves both.
Every policy deployment is started fresh for its run, and the layouts alternate (ABBA), so
the machine's noise hits both alike. Each run is ``tpo eval`` (the CLI) over the same
prompts; read from the servers' ``/metrics``: requests per replica (vLLM labels a DP
deployment's series with ``engine``), generated tokens and prefix-cache hits.

Then one run per layout where a replica dies mid-run (SIGKILL once ``--kill-after`` lines
are written): the DP deployment's ``EngineCore_DP1`` process, or the second server's whole
process group. Reported: exit status, lines written, failed prompts, wall time, and whether
the deployment still answers ``/health`` afterwards.

    python -m benchmarks.data_parallel [--prompts 16] [--rounds 1] [-c 8] [-n 3 -d 1]
    python -m benchmarks.data_parallel --layouts dp2 --dp-cpus auto --no-kill  # default binding
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from benchmarks.common import abba_eval_parser, show_table, watched_run, write_json
from benchmarks.prompts import prompts
from testsupport import VLLMServer
from testsupport.models import build_smollm2_hf_dir, build_tiny_reward_model, default_cache_dir
from testsupport.pair import POLICY_NAME, READY_TIMEOUT_S, REWARD_CPUS, REWARD_NAME
from testsupport.servers import parse_prometheus_samples
from testsupport.vllm_env import ensure_vllm_venv

LAYOUTS = ("dp2", "two servers")
REPLICA_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_SERVER_DEV_MODE": "1"}
REQUESTS = "vllm:request_params_n_count"  # one per chat request
METRICS = {
    "requests": REQUESTS,
    "generated_tokens": "vllm:generation_tokens_total",
    "prefix_queries": "vllm:prefix_cache_queries_total",
    "prefix_hits": "vllm:prefix_cache_hits_total",
}
SECONDS_RE = re.compile(r"(\d+) new this run, ([\d.]+)s\)")
FAILED_RE = re.compile(r"(\d+) prompts failed|stopped after (\d+) failed prompts")


def parse_args() -> argparse.Namespace:
    parser = abba_eval_parser(__doc__, rounds=1, rounds_help="ABBA pairs of timed runs")
    parser.add_argument("--kill-after", type=int, default=4, help="lines written, then kill")
    parser.add_argument("--no-kill", action="store_true", help="skip the runs with a kill")
    parser.add_argument("--layouts", nargs="+", choices=LAYOUTS, default=list(LAYOUTS))
    parser.add_argument(
        "--dp-cpus", default="0|1", help="VLLM_CPU_OMP_THREADS_BIND of the DP deployment"
    )
    parser.add_argument("--out", type=Path)
    return parser.parse_args()


@dataclass
class Deployment:
    """The policy servers of one layout, and the URLs ``tpo eval`` is given."""

    layout: str
    servers: list[VLLMServer] = field(default_factory=list)

    @property
    def urls(self) -> list[str]:
        return [s.openai_base_url for s in self.servers]

    def replicas(self) -> dict[str, dict[str, float]]:
        """Per replica (``server:engine``) the counters of :data:`METRICS`."""
        out: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(METRICS, 0.0))
        for i, server in enumerate(self.servers):
            try:
                text = httpx.get(server.base_url + "/metrics", timeout=10).text
            except httpx.HTTPError:
                continue  # a dead server counts nothing
            for name, labels, value in parse_prometheus_samples(text):
                for key, metric in METRICS.items():
                    if name == metric:
                        out[f"s{i}:e{labels.get('engine', '0')}"][key] += value
        return dict(out)

    def healthy(self) -> list[bool]:
        return [s.is_healthy() for s in self.servers]

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


def start_layout(
    layout: str, python: Path, model: Path, logs: Path, dp_cpus: str = "0|1"
) -> Deployment:
    """Start the policy side of ``layout`` and wait until it answers."""

    def server(tag: str, cpus: str, extra: list[str]) -> VLLMServer:
        env = {**REPLICA_ENV, "VLLM_CPU_OMP_THREADS_BIND": cpus}
        log = logs / f"vllm-{tag}-{os.getpid()}.log"
        return VLLMServer(python, model, POLICY_NAME, extra_args=extra, env=env, log_path=log)

    if layout == "dp2":
        deployment = Deployment(layout, [server("dp2", dp_cpus, ["--data-parallel-size", "2"])])
    else:
        deployment = Deployment(layout, [server("one", "0", []), server("two", "1", [])])
    try:
        for s in deployment.servers:
            s.start()
        for s in deployment.servers:
            s.wait_ready(READY_TIMEOUT_S)
    except BaseException:
        deployment.stop()
        raise
    return deployment


def eval_command(
    args: argparse.Namespace, deployment: Deployment, reward: VLLMServer, data: Path, out: Path
) -> list[str]:
    tpo = Path(sys.executable).with_name("tpo")
    head = [str(tpo)] if tpo.exists() else [sys.executable, "-m", "langgraph_tpo.cli"]
    policy = [flag for url in deployment.urls for flag in ("--policy-url", url)]
    return [
        *head, "eval", str(data), "--out", str(out), "--concurrency", str(args.concurrency),
        *policy, "--policy-model", POLICY_NAME,
        "--reward-url", reward.base_url, "--reward-model", REWARD_NAME,
        "--reward-path", str(build_tiny_reward_model()),
        "-n", str(args.num_samples), "-d", str(args.max_iterations),
        "--max-tokens", str(args.max_tokens), "--seed", str(args.seed),
    ]  # fmt: skip


def lines_in(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def kill_replica(deployment: Deployment) -> str:
    """SIGKILL one replica: the DP deployment's second engine core, or the second server."""
    if deployment.layout == "dp2":
        root = deployment.servers[0].process
        assert root is not None
        for child in psutil.Process(root.pid).children(recursive=True):
            if "EngineCore_DP1" in " ".join(child.cmdline()):
                child.kill()
                return f"EngineCore_DP1 (pid {child.pid})"
        raise RuntimeError("no EngineCore_DP1 process under the DP server")
    process = deployment.servers[1].process
    assert process is not None
    os.killpg(process.pid, signal.SIGKILL)
    return f"server {deployment.servers[1].base_url} (process group {process.pid})"


def run_eval(
    args: argparse.Namespace, deployment: Deployment, reward: VLLMServer, tmp: Path, tag: str,
    kill: bool,
) -> dict[str, Any]:  # fmt: skip
    """One ``tpo eval`` over the prompts; with ``kill``, a replica dies once
    ``--kill-after`` lines are written."""
    data, out = tmp / "prompts.jsonl", tmp / f"results-{tag}.jsonl"
    before = deployment.replicas()
    killed = ""
    start = time.perf_counter()
    with (tmp / f"stderr-{tag}.txt").open("w+") as err:
        proc = subprocess.Popen(
            eval_command(args, deployment, reward, data, out), stdout=subprocess.DEVNULL,
            stderr=err, text=True, env={**os.environ, "NO_COLOR": "1", "COLUMNS": "300"},
        )  # fmt: skip
        try:
            while kill and not killed and proc.poll() is None:
                if lines_in(out) >= args.kill_after:
                    killed = kill_replica(deployment)
                time.sleep(0.05)
            proc.wait(timeout=600)
        finally:
            if proc.poll() is None:
                proc.kill()
        err.seek(0)
        stderr = err.read()
    wall = time.perf_counter() - start
    time.sleep(1.0)  # vLLM may count a request just after answering it
    after = deployment.replicas()
    return summarise(args, deployment, proc.returncode, stderr, wall, before, after, out, killed)


def summarise(
    args: argparse.Namespace, deployment: Deployment, code: int, stderr: str, wall: float,
    before: dict[str, dict[str, float]], after: dict[str, dict[str, float]], out: Path,
    killed: str,
) -> dict[str, Any]:  # fmt: skip
    """The row of one run: what ``tpo eval`` said, and the servers' counters over it."""
    delta = {
        replica: {k: v - before.get(replica, {}).get(k, 0.0) for k, v in counters.items()}
        for replica, counters in after.items()
    }
    total = {k: sum(d[k] for d in delta.values()) for k in METRICS}
    match, failed = SECONDS_RE.search(stderr), FAILED_RE.search(stderr)
    seconds = float(match.group(2)) if match else wall
    written = lines_in(out)
    return {
        "layout": deployment.layout,
        "killed": killed or None,
        "exit": code,
        "lines": written,
        "failed": int(next(g for g in failed.groups() if g)) if failed else 0,
        "seconds": seconds,
        "prompts_per_min": 60 * written / seconds,
        "generated_tokens_per_s": total["generated_tokens"] / seconds,
        "requests_per_replica": {r: int(d["requests"]) for r, d in sorted(delta.items())},
        "prefix_hit_rate": total["prefix_hits"] / max(total["prefix_queries"], 1.0),
        "healthy_after": deployment.healthy(),
        "stderr_tail": stderr[-1500:],
    }


def order(rounds: int, layouts: list[str]) -> list[str]:
    pairs = [layouts if r % 2 == 0 else layouts[::-1] for r in range(rounds)]
    return [layout for pair in pairs for layout in pair]


def one_layout_run(
    args: argparse.Namespace, layout: str, reward: VLLMServer, tmp: Path, tag: str, kill: bool
) -> dict[str, Any]:
    """Start ``layout``, run ``tpo eval`` on it, stop it."""
    python, model = ensure_vllm_venv(), build_smollm2_hf_dir()
    deployment = start_layout(layout, python, model, default_cache_dir() / "logs", args.dp_cpus)
    try:
        row = run_eval(args, deployment, reward, tmp, tag, kill)
    finally:
        deployment.stop()
    print(json.dumps({k: v for k, v in row.items() if k != "stderr_tail"}), flush=True)
    return row


def show(args: argparse.Namespace, runs: list[dict[str, Any]]) -> None:
    title = (
        f"One DP-2 deployment vs two servers behind the balancer ({args.prompts} prompts, "
        f"N={args.num_samples}, D={args.max_iterations}, max_tokens {args.max_tokens}, "
        f"concurrency {args.concurrency})"
    )
    columns = [
        "layout", "killed", "exit", "lines", "failed", "seconds", "prompts/min",
        "generated tok/s", "requests per replica", "prefix-cache hit rate", "healthy after",
    ]  # fmt: skip
    rows = [
        [r["layout"], r["killed"] or "-", r["exit"], r["lines"], r["failed"], r["seconds"],
         r["prompts_per_min"], r["generated_tokens_per_s"],
         " / ".join(str(v) for v in r["requests_per_replica"].values()),
         r["prefix_hit_rate"], ",".join(str(h) for h in r["healthy_after"])]
        for r in runs
    ]  # fmt: skip
    show_table(title, columns, rows)


def main() -> None:
    args = parse_args()
    python = ensure_vllm_venv()
    reward_dir = build_tiny_reward_model()
    reward = VLLMServer(
        python, reward_dir, REWARD_NAME, runner="pooling",
        env={"VLLM_CPU_OMP_THREADS_BIND": REWARD_CPUS},
        log_path=default_cache_dir() / "logs" / f"vllm-reward-dp-{os.getpid()}.log",
    )  # fmt: skip
    runs: list[dict[str, Any]] = []
    with watched_run() as seen, tempfile.TemporaryDirectory() as d, reward:
        tmp = Path(d)
        rows = [{"id": i, "prompt": p} for i, p in enumerate(prompts(args.prompts))]
        (tmp / "prompts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        for i, layout in enumerate(order(args.rounds, args.layouts)):
            runs.append(one_layout_run(args, layout, reward, tmp, f"{i}", kill=False))
        for layout in () if args.no_kill else args.layouts:
            runs.append(one_layout_run(args, layout, reward, tmp, f"kill-{layout}", kill=True))
    show(args, runs)
    for run in runs:
        if run["killed"]:
            print(f"\n{run['layout']}, killed {run['killed']}; stderr tail:\n{run['stderr_tail']}")
    payload = {"args": {k: str(v) for k, v in vars(args).items()}, "runs": runs, **seen}
    write_json("data_parallel", payload, args.out)


if __name__ == "__main__":
    main()
