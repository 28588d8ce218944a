"""The vLLM servers the benchmarks run against, started like the integration tests do.

:func:`running_servers` is the context manager every benchmark uses: it reuses servers given
by URL (``--policy-url``/``--reward-url``, e.g. GPU servers) or starts the test suite's pair
(:func:`testsupport.pair.start_server_pair`) and always stops them (whole process
groups) on the way out.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from testsupport import VLLMServer, build_smollm2_hf_dir
from testsupport.pair import (
    POLICY_CPUS,
    POLICY_NAME,
    REWARD_CPUS,
    REWARD_NAME,
    ServerPair,
    external_server_pair,
    start_server_pair,
)

BenchServers = ServerPair
CHAT = {"handler": "/v1/chat/completions"}
CLASSIFY = {"handler": "/classify"}


def add_server_args(parser: argparse.ArgumentParser) -> None:
    """``--policy-url``/``--reward-url`` (and model names, tokenizers) to reuse servers."""
    group = parser.add_argument_group("servers (default: start vLLM CPU servers here)")
    group.add_argument("--policy-url", help="running policy server (vLLM), e.g. GPU")
    group.add_argument("--reward-url", help="running pooling reward server with /classify")
    group.add_argument("--policy-model", default=POLICY_NAME, help="served policy model name")
    group.add_argument("--reward-model", default=REWARD_NAME, help="served reward model name")
    group.add_argument("--reward-tokenizer", type=Path, help="reward tokenizer directory")
    group.add_argument("--policy-tokenizer", type=Path, help="policy tokenizer directory")
    group.add_argument("--policy-cpus", default=POLICY_CPUS, help="CPU binding of the policy")
    group.add_argument("--reward-cpus", default=REWARD_CPUS, help="CPU binding of the reward")


@contextlib.contextmanager
def running_servers(args: argparse.Namespace | None = None) -> Iterator[BenchServers]:
    """Servers from ``--policy-url``/``--reward-url`` when both are given, else started here
    and stopped (process groups, SIGTERM then SIGKILL) when the block exits."""
    policy_url = getattr(args, "policy_url", None)
    reward_url = getattr(args, "reward_url", None)
    if policy_url and reward_url:
        yield external_server_pair(
            policy_url,
            reward_url,
            policy_model=getattr(args, "policy_model", POLICY_NAME),
            reward_model=getattr(args, "reward_model", REWARD_NAME),
            reward_tokenizer=getattr(args, "reward_tokenizer", None),
            policy_tokenizer=getattr(args, "policy_tokenizer", None) or build_smollm2_hf_dir(),
        )
        return
    started: list[VLLMServer] = []
    try:
        yield start_server_pair(
            started,
            policy_cpus=getattr(args, "policy_cpus", POLICY_CPUS),
            reward_cpus=getattr(args, "reward_cpus", REWARD_CPUS),
            log_suffix=f"-bench-{os.getpid()}",
            dev_mode=True,
        )
    finally:
        for server in started:
            server.stop()
