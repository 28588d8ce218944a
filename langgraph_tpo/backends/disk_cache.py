"""A cache directory for things that are slow to build (dequantized weights, test models).

Entries are folders filled once, atomically: built in a temporary folder under a file lock
and renamed into place, so concurrent processes never see a half-written entry.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

CACHE_DIR_ENV = "TPO_CACHE_DIR"


def default_cache_dir() -> Path:
    """``$TPO_CACHE_DIR`` when set, else ``~/.cache/langgraph-tpo``."""
    env = os.environ.get(CACHE_DIR_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "langgraph-tpo"


def log(message: str) -> None:
    """Progress line on stderr (these builds take seconds to minutes)."""
    print(f"[langgraph-tpo] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def cache_lock(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_path`` (created if missing) for the block."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


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
