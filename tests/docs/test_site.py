"""The documentation site builds with MkDocs in strict mode (broken links fail)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.blocks import ROOT

DOCS_EXTRA = "the 'docs' extra is not installed: pip install -c constraints.txt '.[docs]'"


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    for module in ("mkdocs", "material", "mkdocstrings_handlers.python"):
        pytest.importorskip(module, reason=DOCS_EXTRA)
    site = tmp_path / "site"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-f",
            str(ROOT / "mkdocs.yml"),
            "-d",
            str(site),
        ],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    pages = {p.parent.name for p in site.glob("*/index.html")}
    assert {"python-api", "backends", "failures", "reproduce", "api"} <= pages
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    assert "The CPU-sized preset for the embedded model" in api  # TPOConfig.cpu's docstring
