"""Check a local model directory before loading it, so a wrong path fails at once in plain words.

``from_pretrained`` on a path that does not exist answers with a Hugging Face hub repo-id
message, and on a directory without tokenizer files with a tokenizer-backend hint; and
it fails only when the first model call loads the model. These checks run when a backend
is built and name what is wrong: the path does not exist, or which files are missing.
They raise :class:`BackendUnavailableError` with ``transient = False``: the graph's retry
policy never retries them.
"""

from __future__ import annotations

from pathlib import Path

from langgraph_tpo.errors import BackendUnavailableError

WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.safetensors.index.json", "*.bin.index.json", "*.pt")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")
EXPECTED = "expected config.json and weights, or a .gguf"


def looks_like_hub_id(path: str) -> bool:
    """``owner/name``: what ``from_pretrained`` would look up on the Hugging Face hub."""
    parts = path.split("/")
    return len(parts) == 2 and all(parts) and not path.startswith((".", "~"))


def is_local(path: str | Path) -> bool:
    """True when ``path`` names a local file or directory (existing or not), not a hub id."""
    return Path(path).expanduser().exists() or not looks_like_hub_id(str(path))


def missing_path_error(what: str, path: str) -> BackendUnavailableError:
    return BackendUnavailableError(f"{what} {path!r}: path does not exist")


def no_model_files_reason(directory: Path) -> str:
    """Why ``directory`` (which has no ``.gguf``) is not a transformers model directory, or ''."""
    if not (directory / "config.json").is_file():
        return f"no model files in {directory} ({EXPECTED})"
    if not any(any(directory.glob(pattern)) for pattern in WEIGHT_PATTERNS):
        return (
            f"no model weights in {directory}: it has config.json but no *.safetensors or "
            f"*.bin file ({EXPECTED})"
        )
    return ""


def no_tokenizer_reason(directory: Path) -> str:
    """Why ``directory`` holds no tokenizer, or ''."""
    if any((directory / name).is_file() for name in TOKENIZER_FILES):
        return ""
    return f"no tokenizer in {directory} (expected one of {', '.join(TOKENIZER_FILES)})"


def check_model_dir(what: str, path: str | Path, *, tokenizer: bool = True) -> Path:
    """``path`` as a directory holding a transformers model (and its tokenizer), or the error.

    ``what`` names the model in the message, e.g. "reward model".
    """
    directory = Path(path).expanduser()
    if not directory.exists():
        raise missing_path_error(what, str(path))
    if not directory.is_dir():
        raise BackendUnavailableError(f"{what} {str(path)!r} is a file, not a model directory")
    reason = no_model_files_reason(directory) or (tokenizer and no_tokenizer_reason(directory))
    if reason:
        raise BackendUnavailableError(f"{what} {str(path)!r}: {reason}")
    return directory


def check_tokenizer_dir(what: str, path: str | Path) -> Path:
    """``path`` as a directory holding a tokenizer, or the error naming what is missing."""
    directory = Path(path).expanduser()
    if not directory.exists():
        raise missing_path_error(what, str(path))
    if not directory.is_dir():
        raise BackendUnavailableError(f"{what} {str(path)!r} is a file, not a directory")
    reason = no_tokenizer_reason(directory)
    if reason:
        raise BackendUnavailableError(f"{what} {str(path)!r}: {reason}")
    return directory
