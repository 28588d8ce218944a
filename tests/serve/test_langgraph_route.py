"""``langgraph.json`` declares the Chat Completions app as the LangGraph server's custom route."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from langgraph_cli.config import validate_config
from starlette.applications import Starlette

ROOT = Path(__file__).resolve().parents[2]


def test_langgraph_json_points_at_a_starlette_app(monkeypatch) -> None:
    for name in ("TPO_POLICY_URL", "TPO_POLICY_PATH", "TPO_REWARD_URL", "TPO_REWARD_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TPO_MAX_ITERATIONS", "2")  # TPO_<SETTING> variables set the defaults
    config = validate_config(json.loads((ROOT / "langgraph.json").read_text()))
    path, name = config["http"]["app"].rsplit(":", 1)
    # loaded the way langgraph_api loads it: from the file path, as a fresh module
    spec = importlib.util.spec_from_file_location("user_router_module", ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    app = getattr(module, name)
    assert isinstance(app, Starlette)
    paths = {route.path for route in app.routes}
    assert {"/v1/chat/completions", "/v1/models"} <= paths
    service = app.state.tpo
    assert service.backends.is_embedded and service.defaults.num_samples == 3  # embedded defaults
    assert service.defaults.max_iterations == 2
