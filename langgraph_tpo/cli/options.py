"""The settings every model-running command takes (``tpo run``, ``tpo eval``, ...).

Nothing here declares a setting: :func:`settings_options` derives one flag per field of
:class:`~langgraph_tpo.config.TPOConfig` and
:class:`~langgraph_tpo.backends.factory.BackendSettings`, with the field's description as
its help, and :class:`CommandSettings` merges, for each field, its ``TPO_<NAME>``
environment variable, the ``--config`` file's key and the flag (later wins). A field added
to either model appears in every command, in the config file and in the environment.

Every field has a flag except those in :data:`NO_FLAG`, with the reason.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import tomllib
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from langgraph.types import RetryPolicy
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from langgraph_tpo.assembly import resolve_settings
from langgraph_tpo.backends.factory import BackendSettings
from langgraph_tpo.config import TPOConfig, env_name
from langgraph_tpo.errors import ConfigError
from langgraph_tpo.graph.builder import DEFAULT_RETRY
from langgraph_tpo.prompts import BUILTIN_SETS, DEFAULT_PROMPT_SET, PromptSet

BACKEND_PANEL = "Backends (default: SmolLM2 in-process on CPU, judged by itself)"
TPO_PANEL = "TPO settings (defaults: paper; embedded model: N=3 D=1 max_tokens=256)"

# Settings without a flag (nor a config-file key), and why.
NO_FLAG = {
    "review_gradient": "review_gradient is not available in the CLI: it pauses for a human to "
    "edit the gradient and needs an interactive resume; use the Python API or LangGraph Studio",
}
# Options of the commands themselves that a config file may also set: (type, smallest
# value, the commands that have it); a key of another command's is an error, not ignored.
# What a command reads, writes and prints (the prompt, DATA, --out, --json, --quiet) stays
# on the command line.
COMMAND_OPTIONS: dict[str, tuple[type, int | None, frozenset[str]]] = {
    "retries": (int, 0, frozenset({"run", "eval", "serve"})),
    "concurrency": (int, 1, frozenset({"eval"})),
    "limit": (int, 1, frozenset({"eval"})),
    "max_errors": (int, 1, frozenset({"eval"})),
    "compare": (str, None, frozenset({"eval"})),
}
COMMAND_LINE_ONLY = {"prompt", "data", "out", "json", "quiet", "config"}
# Flag names of the settings that have more than their --kebab-case name (first: the main one).
FLAG_NAMES: dict[str, tuple[str, ...]] = {
    "num_samples": ("--num-samples", "-n"),
    "max_iterations": ("--max-iterations", "-d"),
    "score_threshold": ("--threshold", "--score-threshold"),
    "prompt_set": ("--prompts", "--prompt-set"),
}

ConfigFile = Annotated[
    Path | None,
    typer.Option(
        "--config",
        exists=True,
        dir_okay=False,
        help="TOML or YAML file with TPO, backend and command settings, named like the flags "
        "(num_samples = 3, policy_url = ..., retries = 2, concurrency = 8); flags override it, "
        "and it overrides TPO_* environment variables. The prompt, DATA, --out, --json and "
        "--quiet are command-line only.",
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
        rich_help_panel=BACKEND_PANEL,
    ),
]


def flag_names(name: str) -> tuple[str, ...]:
    """The flags of setting ``name``: ``--kebab-case`` unless :data:`FLAG_NAMES` says more."""
    return FLAG_NAMES.get(name, ("--" + name.replace("_", "-"),))


def aliases() -> dict[str, str]:
    """Other spellings of settings in a config file, from their extra long flags
    (``threshold`` for ``score_threshold``)."""
    return {
        flag[2:].replace("-", "_"): name
        for name, flags in FLAG_NAMES.items()
        for flag in flags
        if flag.startswith("--") and flag[2:].replace("-", "_") != name
    }


def cli_type(annotation: Any) -> Any:
    """The command-line type of a field: its scalar type (bool, int, float, str), else str
    (a Literal, a JSON object, ...: the model validates the text); a field that takes a list
    of strings (several server URLs) is a flag that may be repeated."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        scalars = [cli_type(a) for a in args if a is not type(None)]
        if list[str] in scalars:
            return list[str]
        return scalars[0] if len(set(scalars)) == 1 else str
    if typing.get_origin(annotation) is list:
        return list[str]
    return annotation if annotation in (bool, int, float, str) else str


def setting_parameter(name: str, field: FieldInfo, panel: str) -> inspect.Parameter:
    """A keyword parameter typer turns into the flag of one setting (unset: None)."""
    kind = cli_type(field.annotation)
    names = flag_names(name)
    if kind is bool:  # --judge / --no-judge: unset keeps the file's or the default value
        names = tuple(f"{n}/--no-{n[2:]}" if n.startswith("--") else n for n in names)
    option = typer.Option(
        *names,
        help=f"{field.description} Env: {env_name(name)}.",
        rich_help_panel=panel,
        show_default=False,
    )
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[kind | None, option],
    )


def flagged_fields(model: type[BaseModel]) -> dict[str, FieldInfo]:
    """The fields of ``model`` that have a flag."""
    return {n: f for n, f in model.model_fields.items() if n not in NO_FLAG}


@dataclass(frozen=True)
class CommandSettings:
    """What a command was given for its settings: the flags (None: not given), the
    ``--config`` file and ``--retries``; :meth:`resolve` merges them with the environment."""

    flags: dict[str, Any]
    config_file: Path | None = None
    retries: int | None = None
    config_model: type[TPOConfig] = TPOConfig
    backend_model: type[BackendSettings] = BackendSettings
    command: str | None = None  # tpo COMMAND: which command options its config file may set

    @property
    def api_key(self) -> str | None:
        """The ``--api-key`` flag, to redact from errors before the settings resolve."""
        return self.flags.get("api_key")

    @property
    def retry(self) -> RetryPolicy | None:
        """The graph's retry policy for ``--retries`` (else the config file's ``retries``;
        neither: the graph's default budget)."""
        return retry_policy(self.option("retries", self.retries))

    def option(self, name: str, given: Any = None, default: Any = None) -> Any:
        """One of the command's own options (:data:`COMMAND_OPTIONS`): the flag when given,
        else the config file's value, else ``default``."""
        if given is not None:
            return given
        return self.file_values.get(name, default)

    @functools.cached_property
    def file_values(self) -> dict[str, Any]:
        """The ``--config`` file's settings and command options, checked (read once)."""
        return read_settings_file(
            self.config_file, self.config_model, self.backend_model, self.command
        )

    def load(self, secrets: list[str | None]) -> tuple[TPOConfig, BackendSettings, PromptSet]:
        """What ``tpo run``, ``tpo eval`` and ``tpo serve`` start from: :meth:`resolve`, then
        the prompt set (:func:`load_prompts`); the backends' API key is added to ``secrets``
        first."""
        config, backends = self.resolve()
        secrets.append(backends.api_key)
        config, prompts = load_prompts(config)
        return config, backends, prompts

    def resolve(self) -> tuple[TPOConfig, BackendSettings]:
        """Environment, then config file, then flags (later wins), validated: the run's
        TPO config and backend settings (:func:`~langgraph_tpo.assembly.resolve_settings`,
        which also puts the embedded model's smaller defaults under them)."""
        given = {
            **{k: v for k, v in self.file_values.items() if k not in COMMAND_OPTIONS},
            **{k: v for k, v in self.flags.items() if v is not None},
        }
        return resolve_settings(
            given, config_model=self.config_model, backend_model=self.backend_model
        )


def settings_options(
    config_model: type[TPOConfig] = TPOConfig,
    backend_model: type[BackendSettings] = BackendSettings,
    *,
    command: str | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a typer command one flag per setting of ``backend_model`` and ``config_model``
    plus ``--config`` and ``--retries``; the command receives them as its ``settings``
    keyword argument, a :class:`CommandSettings`. ``command`` (``run``, ``eval``,
    ``serve``) says which command options (:data:`COMMAND_OPTIONS`) its config file may set.

    Typer reads a command's flags from its signature, so the wrapper's ``__signature__`` is
    the command's own parameters followed by the derived ones.
    """
    derived = [
        inspect.Parameter(
            "config_file", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=ConfigFile
        ),
        inspect.Parameter(
            "retries", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Retries
        ),
        *_parameters(backend_model, BACKEND_PANEL),
        *_parameters(config_model, TPO_PANEL),
    ]
    setting_names = [p.name for p in derived[2:]]
    command_name = command

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        own = [
            p
            for p in inspect.signature(command, eval_str=True).parameters.values()
            if p.name != "settings"
        ]
        clash = {p.name for p in own} & {p.name for p in derived}
        if clash:
            raise TypeError(f"{command.__name__}: parameters {sorted(clash)} are settings")

        @functools.wraps(command)
        def with_settings(**kwargs: Any) -> Any:
            settings = CommandSettings(
                {name: kwargs.pop(name) for name in setting_names},
                kwargs.pop("config_file"),
                kwargs.pop("retries"),
                config_model,
                backend_model,
                command_name,
            )
            return command(**kwargs, settings=settings)

        with_settings.__signature__ = inspect.Signature([*own, *derived])  # type: ignore[attr-defined]
        return with_settings

    return decorate


def _parameters(model: type[BaseModel], panel: str) -> Iterable[inspect.Parameter]:
    return (setting_parameter(n, f, panel) for n, f in flagged_fields(model).items())


def load_prompts(config: TPOConfig) -> tuple[TPOConfig, PromptSet]:
    """The run's prompt set from ``--prompts NAME|FILE`` (``prompt_set``): a built-in name,
    else a YAML/TOML file read (and checked) now, before any model work; the config then
    names the loaded set. Paper when unset."""
    value = config.prompt_set or DEFAULT_PROMPT_SET
    if value in BUILTIN_SETS:
        return config, BUILTIN_SETS[value]
    path = Path(value)
    if not path.is_file():
        raise ConfigError(
            f"--prompts {value!r}: neither a built-in prompt set ({', '.join(BUILTIN_SETS)}) "
            "nor a file"
        )
    prompts = PromptSet.from_file(path)
    return config.with_overrides({"prompt_set": prompts.name}), prompts


def retry_policy(retries: int | None) -> RetryPolicy | None:
    """The graph's retry policy for ``--retries`` (None: the graph's default budget)."""
    if retries is None:
        return DEFAULT_RETRY
    return DEFAULT_RETRY._replace(max_attempts=retries + 1) if retries else None


def read_settings_file(
    path: Path | None,
    config_model: type[TPOConfig] = TPOConfig,
    backend_model: type[BackendSettings] = BackendSettings,
    command: str | None = None,
) -> dict[str, Any]:
    """Settings from a TOML (``.toml``) or YAML/JSON file; keys are the settings' field
    names (or flag names: ``num-samples``, ``threshold``). Every problem names the file:
    an unknown key, another command's option (``concurrency`` in ``tpo run``'s file), a
    value of the wrong type, TOML in a file named as YAML or the other way round."""
    if path is None:
        return {}
    data = _parse_settings(path)
    other_names = aliases()
    data = {
        other_names.get(k, k): v
        for k, v in ((str(k).replace("-", "_"), v) for k, v in data.items())
    }
    for name, why in NO_FLAG.items():
        if name in data:
            raise ConfigError(f"{path}: {why}")
    known = {*flagged_fields(config_model), *flagged_fields(backend_model), *COMMAND_OPTIONS}
    problems = [_unknown_key(key, known) for key in sorted(set(data) - known)]
    problems += [p for key in data if (p := _other_commands_option(key, command))]
    problems += [p for key, value in data.items() if (p := _wrong_option_type(key, value))]
    problems += _wrong_setting_types(data, config_model, backend_model)
    if problems:
        raise ConfigError(f"{path}: " + "; ".join(problems))
    return data


def _parse_settings(path: Path) -> dict[str, Any]:
    """The file's table of settings, parsed as its suffix says (``.toml``: TOML, else
    YAML, which JSON is a subset of); a file in the other language is named as such."""
    as_toml = path.suffix == ".toml"
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: cannot parse settings: {exc}") from exc
    try:
        data = tomllib.loads(text) if as_toml else yaml.safe_load(text)
        problem = "" if isinstance(data, dict) else "expected a table/mapping of settings"
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        problem = f"cannot parse settings: {exc}"
    if not problem:
        return data
    if _parses_as(text, not as_toml):
        language, suffix = ("YAML", ".yaml") if as_toml else ("TOML", ".toml")
        problem = f"this is {language}, not {'TOML' if as_toml else 'YAML'}: name it {suffix}"
    raise ConfigError(f"{path}: {problem}")


def _parses_as(text: str, toml: bool) -> bool:
    """Whether ``text`` is a table of settings in TOML (``toml``) or YAML."""
    try:
        data = tomllib.loads(text) if toml else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and bool(data)


def _unknown_key(key: str, known: set[str]) -> str:
    """``unknown setting 'num_sample' (did you mean 'num_samples'?)``, as a mistyped flag
    gets."""
    if key in COMMAND_LINE_ONLY:
        return f"{key!r} is set on the command line only, not in a config file"
    close = difflib.get_close_matches(key, sorted(known | set(aliases())), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown setting {key!r}{hint}"


def _other_commands_option(key: str, command: str | None) -> str:
    """Why ``key`` is not an option of ``tpo COMMAND`` (it would be ignored), or ''."""
    if command is None or key not in COMMAND_OPTIONS:
        return ""
    commands = COMMAND_OPTIONS[key][2]
    if command in commands:
        return ""
    owners = " and ".join(f"tpo {c}" for c in sorted(commands))
    return f"{key!r} is an option of {owners}, not of tpo {command}"


def _wrong_option_type(key: str, value: Any) -> str:
    """Why a command option's value in the file is not what it must be, or '' (settings are
    checked by :func:`_wrong_setting_types`)."""
    if key not in COMMAND_OPTIONS:
        return ""
    kind, least, _ = COMMAND_OPTIONS[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        return f"{key} must be {'an integer' if kind is int else 'a string'}, got {value!r}"
    if least is not None and value < least:
        return f"{key} must be >= {least}, got {value!r}"
    return ""


def _wrong_setting_types(data: dict[str, Any], *models: type[BaseModel]) -> list[str]:
    """Each setting in ``data`` whose value its field rejects on its own (type and range),
    as ``name: why (got value)``; the rules between settings are checked once all layers
    are merged."""
    problems = []
    for model in models:
        strict = ConfigDict(strict=bool(model.model_config.get("strict")))
        for name, field in model.model_fields.items():
            if name not in data:
                continue
            adapter = TypeAdapter(Annotated[field.annotation, field], config=strict)
            try:
                adapter.validate_python(data[name])
            except ValidationError as exc:
                problems.append(f"{name}: {exc.errors()[0]['msg']} (got {data[name]!r})")
    return problems


CONFIG_FLAGS = set(flagged_fields(TPOConfig))
BACKEND_FLAGS = set(flagged_fields(BackendSettings))
