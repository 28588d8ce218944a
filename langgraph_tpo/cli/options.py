"""Options shared by ``tpo run`` and ``tpo eval``: backends and TPOConfig fields.

Every TPOConfig field has a flag except ``review_gradient``: pausing for a human to edit
the gradient needs an interactive resume, which the Python API and LangGraph Studio offer.
"""

from __future__ import annotations

import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from langgraph.types import RetryPolicy

from langgraph_tpo.backends.factory import EMBEDDED_DEFAULTS, BackendSettings
from langgraph_tpo.config import TPOConfig, make_config
from langgraph_tpo.errors import ConfigError
from langgraph_tpo.graph.builder import DEFAULT_RETRY

BACKEND = "Backends (default: SmolLM2 in-process on CPU, judged by itself)"
TPO = "TPO settings (defaults: paper; embedded model: N=3 D=1 max_tokens=256)"
NO_REVIEW = (
    "review_gradient is not available in the CLI: it pauses for a human to edit the gradient "
    "and needs an interactive resume; use the Python API or LangGraph Studio"
)

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
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="TPO_API_KEY",
        show_envvar=True,
        show_default=False,
        help="API key for --policy-url (else $OPENAI_API_KEY). Never printed or written to "
        "any output or results file.",
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
Retries = Annotated[
    int | None,
    typer.Option(
        "--retries",
        min=0,
        help="Retries of a model call that failed transiently (server down, timeout, HTTP "
        f"429/5xx), with exponential backoff from 1 s; 0 fails at once. Default: "
        f"{DEFAULT_RETRY.max_attempts - 1}.",
        rich_help_panel=BACKEND,
    ),
]
ConfigFile = Annotated[
    Path | None,
    typer.Option(
        "--config",
        exists=True,
        dir_okay=False,
        help="TOML or YAML file with TPO and backend settings, named like the flags "
        "(num_samples = 3, policy_url = ...); flags override it.",
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
        "--threshold",
        "--score-threshold",
        help="Stop when the best score reaches this value (score_threshold).",
        rich_help_panel=TPO,
    ),
]
Patience = Annotated[
    int | None,
    typer.Option(help="Stop after this many iterations without improvement.", rich_help_panel=TPO),
]
Mode = Annotated[
    str | None,
    typer.Option(
        help="tpo: critique chosen against rejected; revision: critique chosen alone; "
        "bon: best-of-N, no loop. (review_gradient has no flag: it needs an interactive "
        "resume; use the Python API or Studio.)",
        rich_help_panel=TPO,
    ),
]
Seed = Annotated[
    int | None,
    typer.Option(
        help="Sampling seed (update k uses seed + k). Default: random.", rich_help_panel=TPO
    ),
]
MaxContextTokens = Annotated[
    int | None,
    typer.Option(
        help="Chosen/rejected are cut to this many tokens inside critique and update prompts.",
        rich_help_panel=TPO,
    ),
]

UNSUPPORTED_CONFIG = {"review_gradient": NO_REVIEW}
CONFIG_FLAGS = set(TPOConfig.model_fields) - set(UNSUPPORTED_CONFIG)
BACKEND_FLAGS = {f.name for f in fields(BackendSettings)}
ALIASES = {"threshold": "score_threshold"}


def retry_policy(retries: int | None) -> RetryPolicy | None:
    """The graph's retry policy for ``--retries`` (None: the graph's default budget)."""
    if retries is None:
        return DEFAULT_RETRY
    return DEFAULT_RETRY._replace(max_attempts=retries + 1) if retries else None


def read_settings_file(path: Path | None) -> dict[str, Any]:
    """Settings from a TOML (``.toml``) or YAML/JSON file; keys use TPOConfig/flag names."""
    if path is None:
        return {}
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot parse settings: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a table/mapping of settings")
    data = _canonical({str(k).replace("-", "_"): v for k, v in data.items()})
    for name, why in UNSUPPORTED_CONFIG.items():
        if name in data:
            raise ConfigError(f"{path}: {why}")
    unknown = set(data) - CONFIG_FLAGS - BACKEND_FLAGS
    if unknown:
        raise ConfigError(f"{path}: unknown settings {sorted(unknown)}")
    return data


def _canonical(values: dict[str, Any]) -> dict[str, Any]:
    return {ALIASES.get(k, k): v for k, v in values.items()}


def resolve(file: Path | None, flags: dict[str, Any]) -> tuple[TPOConfig, BackendSettings]:
    """Merge file settings and flags (flags win) into a config and backend settings.

    ``flags`` may hold anything (e.g. a command's ``locals()``); only TPOConfig fields
    and backend settings are used, and unset flags (None, False) keep the file's value.
    """
    values = read_settings_file(file)
    values.update({k: v for k, v in _canonical(flags).items() if v is not None and v is not False})
    backends = BackendSettings.from_env(**{k: v for k, v in values.items() if k in BACKEND_FLAGS})
    backends.validate()
    base = EMBEDDED_DEFAULTS if backends.is_embedded else {}
    config = make_config({**base, **{k: v for k, v in values.items() if k in CONFIG_FLAGS}})
    return config, backends
