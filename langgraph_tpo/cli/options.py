"""Options shared by ``tpo run`` and ``tpo eval``: backends and TPOConfig fields."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from langgraph_tpo.backends.factory import EMBEDDED_DEFAULTS, BackendSettings
from langgraph_tpo.config import TPOConfig, make_config
from langgraph_tpo.errors import ConfigError

BACKEND = "Backends (default: SmolLM2 in-process on CPU, judged by itself)"
TPO = "TPO settings (default: paper values; N=3, D=1, max_tokens=256 on the embedded default)"

PolicyUrl = Annotated[
    str | None,
    typer.Option(
        help="OpenAI-compatible policy server (vLLM), e.g. http://127.0.0.1:8000/v1. "
        "Env: TPO_POLICY_URL.",
        rich_help_panel=BACKEND,
    ),
]
PolicyModel = Annotated[
    str | None,
    typer.Option(
        help="Served policy model name at --policy-url. Env: TPO_POLICY_MODEL.",
        rich_help_panel=BACKEND,
    ),
]
PolicyPath = Annotated[
    str | None,
    typer.Option(
        help="Local policy model (HF directory or .gguf) run in-process with transformers. "
        "Env: TPO_POLICY_PATH.",
        rich_help_panel=BACKEND,
    ),
]
RewardUrl = Annotated[
    str | None,
    typer.Option(
        help="vLLM reward server (vllm serve RM --runner pooling), scored through /classify. "
        "Env: TPO_REWARD_URL.",
        rich_help_panel=BACKEND,
    ),
]
RewardModel = Annotated[
    str | None,
    typer.Option(
        help="Served reward model name at --reward-url. Env: TPO_REWARD_MODEL.",
        rich_help_panel=BACKEND,
    ),
]
RewardPath = Annotated[
    str | None,
    typer.Option(
        help="Local reward model directory: scored in-process with transformers, or, with "
        "--reward-url, the tokenizer whose chat template renders the inputs. Env: TPO_REWARD_PATH.",
        rich_help_panel=BACKEND,
    ),
]
Judge = Annotated[
    bool,
    typer.Option(
        "--judge",
        help="Score with the policy as an LLM judge (the default when no reward model is given).",
        rich_help_panel=BACKEND,
    ),
]
ConfigFile = Annotated[
    Path | None,
    typer.Option(
        "--config",
        exists=True,
        dir_okay=False,
        help="TOML or YAML file with TPO settings and backend settings; flags override it.",
    ),
]
NumSamples = Annotated[
    int | None,
    typer.Option(
        "--num-samples", "-n", help="N: responses per sampling and per update.", rich_help_panel=TPO
    ),
]
MaxIterations = Annotated[
    int | None,
    typer.Option(
        "--max-iterations", "-d", help="D: optimization iterations at most.", rich_help_panel=TPO
    ),
]
Temperature = Annotated[
    float | None, typer.Option(help="Sampling temperature.", rich_help_panel=TPO)
]
TopP = Annotated[float | None, typer.Option(help="Nucleus sampling top_p.", rich_help_panel=TPO)]
MaxTokens = Annotated[
    int | None, typer.Option(help="Max new tokens per generation.", rich_help_panel=TPO)
]
Threshold = Annotated[
    float | None,
    typer.Option(
        "--threshold", help="Stop when the best score reaches this value.", rich_help_panel=TPO
    ),
]
Patience = Annotated[
    int | None,
    typer.Option(help="Stop after this many iterations without improvement.", rich_help_panel=TPO),
]
Mode = Annotated[str | None, typer.Option(help="tpo, revision or bon.", rich_help_panel=TPO)]
Seed = Annotated[int | None, typer.Option(help="Sampling seed.", rich_help_panel=TPO)]
MaxContextTokens = Annotated[
    int | None,
    typer.Option(
        help="Cap on tokens of chosen/rejected inside critique prompts.", rich_help_panel=TPO
    ),
]

CONFIG_FLAGS = {
    "num_samples",
    "max_iterations",
    "temperature",
    "top_p",
    "max_tokens",
    "score_threshold",
    "patience",
    "mode",
    "seed",
    "max_context_tokens",
}
BACKEND_FLAGS = {
    "policy_url",
    "policy_model",
    "policy_path",
    "reward_url",
    "reward_model",
    "reward_path",
    "judge",
    "api_key",
}


def read_settings_file(path: Path | None) -> dict[str, Any]:
    """Settings from a TOML (``.toml``) or YAML/JSON file; keys use TPOConfig/flag names."""
    if path is None:
        return {}
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot parse settings: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a table/mapping of settings")
    data = {k.replace("-", "_"): v for k, v in data.items()}
    if "threshold" in data:
        data["score_threshold"] = data.pop("threshold")
    unknown = set(data) - CONFIG_FLAGS - BACKEND_FLAGS
    if unknown:
        raise ConfigError(f"{path}: unknown settings {sorted(unknown)}")
    return data


def resolve(file: Path | None, flags: dict[str, Any]) -> tuple[TPOConfig, BackendSettings]:
    """Merge file settings and flags (flags win) into a config and backend settings."""
    values = read_settings_file(file)
    values.update({k: v for k, v in flags.items() if v is not None and v is not False})
    backends = BackendSettings.from_env(**{k: v for k, v in values.items() if k in BACKEND_FLAGS})
    backends.validate()
    base = EMBEDDED_DEFAULTS if backends.is_embedded else {}
    config = make_config({**base, **{k: v for k, v in values.items() if k in CONFIG_FLAGS}})
    return config, backends
