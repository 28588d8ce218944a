"""The pins of the langgraph-tpo + vLLM venv: exactly the runtime dependencies the vLLM
freeze lacks, at the versions of constraints.txt."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from testsupport.vllm_env import constraints_path, layer_constraints_path

ROOT = Path(__file__).resolve().parents[2]


def pins(path: Path) -> dict[str, str]:
    found = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            found[canonicalize_name(name)] = version.strip()
    return found


def runtime_closure() -> set[str]:
    """langgraph-tpo's core dependencies and theirs (no extras), as installed here."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    todo = [Requirement(r).name for r in project["dependencies"]]
    seen: set[str] = set()
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        for raw in importlib.metadata.requires(name) or []:
            req = Requirement(raw)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


def test_layer_pins_are_the_main_constraints() -> None:
    main, layer = pins(ROOT / "constraints.txt"), pins(layer_constraints_path())
    assert layer, "no pins read"
    assert {name: main.get(name) for name in layer} == layer


def test_layer_holds_what_the_vllm_freeze_lacks() -> None:
    freeze, layer = pins(constraints_path()), pins(layer_constraints_path())
    needed = runtime_closure() - {"setuptools"}  # a venv brings its own setuptools
    assert set(layer) == needed - set(freeze)
    assert not set(layer) & set(freeze)
