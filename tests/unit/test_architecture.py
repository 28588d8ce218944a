"""The layering rule of docs/architecture.md, checked against the package's real imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "langgraph_tpo"

# Each layer may import only the layers listed for it (and itself). The package root
# (``langgraph_tpo/__init__.py``) re-exports the public names and is left out.
CORE = {
    "errors",
    "config",
    "reward",
    "policy",
    "truncation",
    "prompts",
    "extraction",
    "degeneration",
    "context_window",
}
ALLOWED: dict[str, set[str]] = {
    **{name: CORE for name in CORE},
    "nodes": CORE | {"graph"},  # graph.state and graph.routing only: checked below
    "graph": CORE | {"nodes"},
    "adapters": CORE | {"graph"},
    "fakes": CORE,
    "backends": CORE,
    "assembly": CORE | {"graph", "backends"},
    "serve": CORE | {"graph", "backends", "adapters", "assembly"},
    "studio": CORE | {"graph", "backends", "assembly"},
    "cli": CORE | {"graph", "backends", "adapters", "serve", "assembly"},
}
NODE_VIEW_OF_GRAPH = {"langgraph_tpo.graph.state", "langgraph_tpo.graph.routing"}
OUTSIDE = ("testsupport", "tests", "benchmarks", "examples")


def layer_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def imported_modules(path: Path) -> list[str]:
    modules = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "langgraph_tpo":
                modules.extend(f"langgraph_tpo.{alias.name}" for alias in node.names)
            else:
                modules.append(node.module)
    return modules


SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_layer_imports_only_what_the_rule_allows(path: Path) -> None:
    layer = layer_of(path)
    assert layer in ALLOWED, f"{layer} is not described in docs/architecture.md"
    for module in imported_modules(path):
        top = module.split(".")[0]
        assert top not in OUTSIDE, f"{path.name} imports test/benchmark code: {module}"
        assert not module.startswith("langgraph._internal"), f"{path.name}: private {module}"
        if top != "langgraph_tpo" or module == "langgraph_tpo":
            continue
        target = module.split(".")[1]
        if target == layer:
            continue
        assert target in ALLOWED[layer], f"{layer} may not import {target} ({path.name})"
        if layer == "nodes" and target == "graph":
            assert module in NODE_VIEW_OF_GRAPH, f"nodes import only state and routing: {module}"


def test_the_architecture_page_names_every_layer() -> None:
    page = (PACKAGE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    for layer in ALLOWED:
        assert f"`{layer}" in page, f"docs/architecture.md does not describe {layer}"
