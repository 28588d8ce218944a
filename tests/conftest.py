"""Fixtures shared across test folders."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from testsupport import VLLMServer
from testsupport.fake_backends import fake_backend_env
from testsupport.pair import (
    POLICY_NAME,
    REWARD_NAME,
    ServerPair,
    external_server_pair,
    start_server_pair,
)

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"

# What makes a test heavy, and the marker it gets (registered in pyproject.toml); `make
# test-fast` deselects them all. A fixture counts wherever it is in the test's closure.
HEAVY_FIXTURES = {
    "vllm_servers": "vllm",  # a real vLLM CPU server pair (and its venv, built if missing)
    "studio_url": "server",  # a `langgraph dev` process
    "smollm2": "model",  # the embedded SmolLM2, loaded with transformers
    "smollm2_tokenizer_dir": "model",
    "tiny_rm_dir": "model",  # a tiny transformers reward model, built from SmolLM2's tokenizer
    "eos_ending_rm_dir": "model",
    "reward_tokenizer": "model",
}
HEAVY_FOLDERS = {"integration": "vllm"}  # every test there runs against real vLLM
HEAVY_MARKERS = ("slow", "integration", "vllm", "model", "server")
FAST_SELECTION = " and ".join(f"not {name}" for name in HEAVY_MARKERS)  # `-m` of test-fast


def heavy_markers(item: pytest.Item) -> set[str]:
    """The heavy markers ``item`` earns from its fixtures and its folder."""
    found = {HEAVY_FIXTURES[name] for name in item.fixturenames if name in HEAVY_FIXTURES}
    folder = Path(item.path).resolve().relative_to(TESTS).parts[0]
    if folder in HEAVY_FOLDERS:
        found.add(HEAVY_FOLDERS[folder])
    if item.get_closest_marker("integration"):
        found.add("vllm")
    return found


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with what makes it heavy (see :data:`HEAVY_FIXTURES`), so that
    ``-m "not slow and not integration and not vllm and not model and not server"`` runs
    the suite without servers and without real models."""
    for item in items:
        for name in sorted(heavy_markers(item)):
            item.add_marker(name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def studio_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("studio") / "langgraph-dev.log"
    cli = Path(sys.executable).parent / "langgraph"
    env = {**os.environ, "LANGSMITH_TRACING": "false", "LANGGRAPH_CLI_NO_ANALYTICS": "1"}
    # the server's default stays the embedded model; runs may name the fake factories
    env["PYTHONPATH"] = fake_backend_env(env)["PYTHONPATH"]
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(cli), "dev", "--no-browser", "--no-reload", "--port", str(port)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"langgraph dev exited:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(1)
        else:
            pytest.fail(f"langgraph dev not ready in 120 s:\n{log.read_text()[-3000:]}")
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def external_vllm_servers() -> ServerPair | None:
    """Servers named by ``TPO_TEST_POLICY_URL``/``TPO_TEST_REWARD_URL``, if both are set
    (served names from ``TPO_TEST_POLICY_MODEL``/``TPO_TEST_REWARD_MODEL``; the reward
    tokenizer from ``TPO_TEST_REWARD_TOKENIZER``, default the tiny reward model built here)."""
    policy_url = os.environ.get("TPO_TEST_POLICY_URL")
    reward_url = os.environ.get("TPO_TEST_REWARD_URL")
    if not (policy_url and reward_url):
        return None
    return external_server_pair(
        policy_url,
        reward_url,
        policy_model=os.environ.get("TPO_TEST_POLICY_MODEL", POLICY_NAME),
        reward_model=os.environ.get("TPO_TEST_REWARD_MODEL", REWARD_NAME),
        reward_tokenizer=os.environ.get("TPO_TEST_REWARD_TOKENIZER"),
    )


@pytest.fixture(scope="session")
def vllm_servers() -> Iterator[ServerPair]:
    """One real vLLM CPU pair for the whole session, shared by every folder that asks:
    a policy (``smollm2``) and a pooling reward server (``tiny-rm``), started here (the vLLM
    venv and both models built if missing) and stopped at session end, or the external
    servers of :func:`external_vllm_servers`."""
    external = external_vllm_servers()
    if external is not None:
        yield external
        return
    servers: list[VLLMServer] = []
    try:
        yield start_server_pair(servers)
    finally:
        for server in servers:
            server.stop()
