"""Optional dependencies: a missing one is an error naming the extra that brings it.

The backends import their heavy libraries (torch, transformers, vllm, math-verify) lazily,
so ``import langgraph_tpo`` works without them. :func:`require` checks, without importing
anything, that the modules a backend needs are installed, and is called when a model is
built (:func:`langgraph_tpo.backends.factory.build_models` and the backend constructors),
so a missing package stops the program before any run, not at its first model call.
"""

from __future__ import annotations

import importlib.util

from langgraph_tpo.errors import BackendUnavailableError

PACKAGE = "langgraph-tpo"


def is_installed(module: str) -> bool:
    """Whether ``module`` (a dotted name) can be imported, found without importing it.

    A module set to None in ``sys.modules`` (Python's way to block an import) counts as
    missing, and so does a submodule whose parent package is missing.
    """
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def install_hint(extra: str) -> str:
    """The pip command that installs ``extra``: ``pip install 'langgraph-tpo[local]'``."""
    return f"pip install '{PACKAGE}[{extra}]'"


def require(extra: str, *modules: str, what: str | None = None) -> None:
    """Raise :class:`BackendUnavailableError` when any of ``modules`` is not installed.

    Reads: ``extra``, the name of the optional-dependency group in pyproject.toml that
    brings the modules (``local``, ``vllm``, ``math``, ...); ``what``, the feature that
    needs them (default: the extra's name), for the message. Writes nothing; the error
    names every missing module and the pip command that installs them.
    """
    missing = [name for name in modules if not is_installed(name)]
    if not missing:
        return
    feature = what or f"the '{extra}' backend"
    raise BackendUnavailableError(
        f"{feature} needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
        f"not installed: {install_hint(extra)}"
    )
