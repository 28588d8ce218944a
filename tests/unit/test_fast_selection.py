"""``make test-fast`` runs the suite without servers and without real models: its ``-m``
selection (tests/conftest.py marks tests by the fixtures they use) keeps no test that uses
a vLLM server, ``langgraph dev``, SmolLM2 or a tiny reward model."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import FAST_SELECTION

ROOT = Path(__file__).resolve().parents[2]
# listed here, not imported from the conftest, so a fixture dropped from its table shows
HEAVY = {
    "vllm_servers",
    "studio_url",
    "smollm2",
    "smollm2_tokenizer_dir",
    "tiny_rm_dir",
    "eos_ending_rm_dir",
    "reward_tokenizer",
}
PROBE = """
import json, os

items = {}

def record(item, selected):
    items[item.nodeid] = {"fixtures": sorted(item.fixturenames), "selected": selected,
                          "markers": sorted({m.name for m in item.iter_markers()})}

def pytest_deselected(items):
    for item in items:
        record(item, False)

def pytest_collection_finish(session):
    for item in session.items:
        record(item, True)
    with open(os.environ["SELECTION_OUT"], "w") as out:
        json.dump(items, out)
"""


def test_the_makefile_runs_test_fast_with_the_conftest_selection() -> None:
    makefile = (ROOT / "Makefile").read_text()
    target = re.search(r"^test-fast:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert target is not None, "no test-fast target"
    assert f'-m "{FAST_SELECTION}"' in target.group(1)
    assert re.search(r"^test: setup\n\t\$\(PY\) -m pytest -q\n", makefile, re.MULTILINE)


def test_the_fast_selection_keeps_no_test_with_a_server_or_a_model(tmp_path: Path) -> None:
    (tmp_path / "selection_probe.py").write_text(PROBE)
    out = tmp_path / "items.json"
    env = {**os.environ, "SELECTION_OUT": str(out), "PYTHONPATH": str(tmp_path)}
    args = ["--collect-only", "-q", "-p", "selection_probe", "-p", "no:cacheprovider"]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *args, "-m", FAST_SELECTION],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    items = json.loads(out.read_text())
    kept = {k: v for k, v in items.items() if v["selected"]}
    dropped = {k: v for k, v in items.items() if not v["selected"]}
    assert len(kept) > 500 and len(dropped) > 100
    assert not [k for k, v in kept.items() if HEAVY & set(v["fixtures"])]
    assert not [k for k in kept if k.startswith(("tests/integration/", "tests/studio/"))]
    # everything heavy was dropped, and each dropped test says why
    assert all(k in dropped for k, v in items.items() if HEAVY & set(v["fixtures"]))
    reasons = {"slow", "integration", "vllm", "model", "server"}
    assert all(reasons & set(v["markers"]) for v in dropped.values())
