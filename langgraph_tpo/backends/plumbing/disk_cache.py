"""A cache directory for things that are slow to build (dequantized weights, test models).

Entries are folders filled once, atomically: built in a temporary folder while holding a
``filelock.FileLock`` and renamed into place, so concurrent processes never see a
half-written entry and never build the same entry twice.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock

CACHE_DIR_ENV = "TPO_CACHE_DIR"
APP_NAME = "langgraph-tpo"


def default_cache_dir() -> Path:
    """``$TPO_CACHE_DIR`` when set, else the platform's user cache folder for the package
    (``platformdirs``: ``~/.cache/langgraph-tpo`` on Linux, or ``$XDG_CACHE_HOME/...``)."""
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env).expanduser()
    # imported here: the vLLM venv's layer (tests, in-process engine) has the core
    # dependencies only and imports this module (through testsupport) without calling this
    import platformdirs

    return platformdirs.user_cache_path(APP_NAME)


def log(message: str) -> None:
    """Progress line on stderr (these builds take seconds to minutes)."""
    print(f"[langgraph-tpo] {message}", file=sys.stderr, flush=True)


def cache_lock(lock_path: Path) -> FileLock:
    """An exclusive inter-process lock on ``lock_path`` (its folder created if missing),
    held for a ``with`` block; blocks until any other holder lets go."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(lock_path)


def build_cached_dir(
    target: Path, build: Callable[[Path], None], what: str, *, quiet: bool = False
) -> Path:
    """Return ``target``, first filling it with ``build(tmp_dir)`` atomically if it is missing."""
    if target.is_dir():
        return target
    with cache_lock(target.with_name(target.name + ".lock")):
        if target.is_dir():  # another process built it while we waited for the lock
            return target
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        started = time.monotonic()
        if not quiet:
            log(f"building {what} in {target} ...")
        try:
            build(tmp)
            os.rename(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if not quiet:
            log(f"built {what} in {time.monotonic() - started:.1f}s")
    return target
