"""The build cache: one builder at a time per entry (``filelock``), entries appear whole, and
the folder comes from ``$TPO_CACHE_DIR`` or the platform's user cache (``platformdirs``)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import platformdirs
import pytest

from langgraph_tpo.backends.plumbing.disk_cache import (
    build_cached_dir,
    cache_lock,
    default_cache_dir,
)

ROOT = Path(__file__).resolve().parents[2]

# a second process that builds the same entry; its build writes a marker, then the folder
SECOND_WRITER = """
import sys
from pathlib import Path
from langgraph_tpo.backends.plumbing.disk_cache import build_cached_dir

def build(tmp: Path) -> None:
    Path(sys.argv[2]).write_text("built by the second writer")
    (tmp / "payload").write_text("second")

build_cached_dir(Path(sys.argv[1]), build, "test entry", quiet=True)
"""


def test_a_concurrent_writer_waits_for_the_lock_and_does_not_build_again(
    tmp_path: Path,
) -> None:
    target = tmp_path / "entry"
    marker = tmp_path / "second-built"
    with cache_lock(target.with_name("entry.lock")):
        args = [sys.executable, "-c", SECOND_WRITER, str(target), str(marker)]
        proc = subprocess.Popen(args, cwd=ROOT)  # this checkout's package first
        time.sleep(3)  # the second writer is started and now blocks on the lock
        assert proc.poll() is None, "the second writer did not wait for the lock"
        assert not target.exists() and not marker.exists()
        target.mkdir()  # what the first holder built while holding the lock
        (target / "payload").write_text("first")
    assert proc.wait(timeout=60) == 0
    assert not marker.exists()  # it saw the finished entry and did not rebuild it
    assert (target / "payload").read_text() == "first"


def test_a_failed_build_leaves_no_entry_and_no_temporary_folder(tmp_path: Path) -> None:
    def broken(tmp: Path) -> None:
        (tmp / "half").write_text("x")
        raise RuntimeError("build failed")

    with pytest.raises(RuntimeError, match="build failed"):
        build_cached_dir(tmp_path / "entry", broken, "test entry", quiet=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["entry.lock"]
    built = build_cached_dir(tmp_path / "entry", lambda t: (t / "ok").write_text("1"), "e")
    assert (built / "ok").read_text() == "1"


def test_the_cache_folder_comes_from_the_env_or_platformdirs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TPO_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("TPO_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == platformdirs.user_cache_path("langgraph-tpo")
    if sys.platform.startswith("linux"):
        assert default_cache_dir() == tmp_path / "xdg" / "langgraph-tpo"
