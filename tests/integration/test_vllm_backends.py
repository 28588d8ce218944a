"""The vLLM HTTP backends against real vLLM CPU servers (see conftest.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from langchain_core.messages import HumanMessage

from langgraph_tpo.backends.inprocess.chat_template import render_batch_for_reward
from langgraph_tpo.backends.servers.vllm_server import VLLMServerReward, vllm_chat_model
from langgraph_tpo.errors import BackendUnavailableError, RewardError
from langgraph_tpo.reward import RewardPair
from testsupport import build_tiny_reward_model
from testsupport.servers import free_port

if TYPE_CHECKING:
    from tests.integration.conftest import VLLMServers

pytestmark = pytest.mark.integration
# One event loop for these tests: langchain-openai caches its httpx client per base URL, and a
# pooled connection from a closed loop fails with "Event loop is closed".
session_loop = pytest.mark.asyncio(loop_scope="session")

PARITY_TOLERANCE = 1e-3
CHAT_HANDLER = {"handler": "/v1/chat/completions"}
PAIRS: list[RewardPair] = [
    ([{"role": "user", "content": "What is 2 + 2?"}], "4"),
    (
        [{"role": "user", "content": "What is 2 + 2?"}],
        "It is five, obviously, and I am sure of it.",
    ),
    (
        [{"role": "user", "content": "Write a haiku about autumn."}],
        "Leaves drift slowly down\ncrisp wind hums through empty boughs\nthe year exhales gold",
    ),
    (
        [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Hi!"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "Translate 'merci beaucoup' to English."},
        ],
        "Thank you very much.",
    ),
    ([{"role": "user", "content": "Résumé en français, s'il te plaît — 日本語も OK?"}], "Oui ✓"),
    ([{"role": "user", "content": "List three primes."}], "2, 3, 5. " * 20),
]


def _delta(before: Mapping[str, float], after: Mapping[str, float], name: str) -> float:
    return after.get(name, 0.0) - before.get(name, 0.0)


def _wait_for(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``check`` until true: vLLM may update counters just after the response is sent."""
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:
        time.sleep(0.2)


@session_loop
async def test_chat_model_samples_n_in_one_request(vllm_servers: VLLMServers) -> None:
    before = vllm_servers.policy_metrics()
    before_http = vllm_servers.policy_metrics(CHAT_HANDLER)
    chat = vllm_chat_model(vllm_servers.policy_url, vllm_servers.policy_model)
    params = {"n": 3, "seed": 1, "max_tokens": 16, "temperature": 0.7, "top_p": 0.95}
    result = await chat.agenerate([[HumanMessage("Name a colour.")]], **params)

    generations = result.generations[0]
    assert len(result.generations) == 1
    assert len(generations) == 3
    assert all(isinstance(g.text, str) and g.text for g in generations)

    def settled() -> bool:
        return _delta(before, vllm_servers.policy_metrics(), "vllm:request_success_total") >= 3

    _wait_for(settled)
    after = vllm_servers.policy_metrics()
    after_http = vllm_servers.policy_metrics(CHAT_HANDLER)
    assert _delta(before_http, after_http, "http_requests_total") == 1  # one HTTP request
    assert _delta(before, after, "vllm:request_params_n_count") == 1  # one request with n...
    assert _delta(before, after, "vllm:request_params_n_sum") == 3  # ...of 3
    assert _delta(before, after, "vllm:request_success_total") == 3  # three samples finished
    assert 0 < _delta(before, after, "vllm:generation_tokens_total") <= 3 * 16


@session_loop
async def test_chat_model_seed_is_reproducible(vllm_servers: VLLMServers) -> None:
    chat = vllm_chat_model(vllm_servers.policy_url + "/v1/", vllm_servers.policy_model)
    params = {"n": 2, "seed": 7, "max_tokens": 12, "temperature": 1.0}
    first = await chat.agenerate([[HumanMessage("Say something.")]], **params)
    second = await chat.agenerate([[HumanMessage("Say something.")]], **params)
    assert [g.text for g in first.generations[0]] == [g.text for g in second.generations[0]]


def _reward(vllm_servers: VLLMServers) -> VLLMServerReward:
    return VLLMServerReward(
        vllm_servers.reward_url,
        vllm_servers.reward_model,
        tokenizer_path=vllm_servers.reward_tokenizer_path,
    )


def _in_process_scores(model_path: Path, pairs: list[RewardPair]) -> list[float]:
    """Raw logits from transformers in float32, right-padded batch, special tokens added."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForSequenceClassification.from_pretrained(model_path, dtype=torch.float32)
    model.eval()
    texts = render_batch_for_reward(tokenizer, pairs)
    batch = tokenizer(texts, padding=True, add_special_tokens=True, return_tensors="pt")
    with torch.inference_mode():
        logits = model(**batch).logits
    return logits[:, 0].tolist()


def _model_path(vllm_servers: VLLMServers) -> Path:
    if vllm_servers.reward_model_path is None:
        pytest.skip("the reward server's weights are not available locally")
    return vllm_servers.reward_model_path


@session_loop
async def test_reward_scores_batch_in_one_request_matching_transformers(
    vllm_servers: VLLMServers,
) -> None:
    reward = _reward(vllm_servers)
    before = vllm_servers.reward_metrics({"handler": "/classify"})
    scores = await reward.ascore_batch(PAIRS)
    after = vllm_servers.reward_metrics({"handler": "/classify"})

    assert reward.requests_sent == 1
    assert _delta(before, after, "http_requests_total") == 1
    expected = await asyncio.to_thread(_in_process_scores, _model_path(vllm_servers), PAIRS)
    assert max(expected) - min(expected) > 0.05, "the tiny reward model should tell texts apart"
    assert scores == pytest.approx(expected, abs=PARITY_TOLERANCE)


@session_loop
async def test_reward_matches_transformers_reward_backend(vllm_servers: VLLMServers) -> None:
    from langgraph_tpo.backends.rewards.transformers_reward import TransformersReward

    local = TransformersReward(str(_model_path(vllm_servers)), batch_size=4)
    expected = await local.ascore_batch(PAIRS)
    scores = await _reward(vllm_servers).ascore_batch(PAIRS)
    assert scores == pytest.approx(expected, abs=PARITY_TOLERANCE)


@session_loop
async def test_reward_without_tokenizer_sends_messages_matching_transformers(
    vllm_servers: VLLMServers,
) -> None:
    from langgraph_tpo.backends.rewards.transformers_reward import TransformersReward

    reward = VLLMServerReward(vllm_servers.reward_url, vllm_servers.reward_model)
    assert not reward.renders_locally  # "tiny-rm" is a served name, not a local directory
    before = vllm_servers.reward_metrics({"handler": "/classify"})
    scores = await reward.ascore_batch(PAIRS)
    after = vllm_servers.reward_metrics({"handler": "/classify"})

    assert reward.requests_sent == len(PAIRS)  # one chat request per candidate
    assert _delta(before, after, "http_requests_total") == len(PAIRS)
    local = TransformersReward(str(_model_path(vllm_servers)), batch_size=4)
    expected = await local.ascore_batch(PAIRS)
    assert max(expected) - min(expected) > 0.05
    assert scores == pytest.approx(expected, abs=PARITY_TOLERANCE)
    assert scores == pytest.approx(await _reward(vllm_servers).ascore_batch(PAIRS), abs=1e-4)


@session_loop
async def test_reward_messages_requests_share_a_bounded_pool(vllm_servers: VLLMServers) -> None:
    reward = VLLMServerReward(vllm_servers.reward_url, vllm_servers.reward_model, max_connections=1)
    wide = VLLMServerReward(vllm_servers.reward_url, vllm_servers.reward_model)
    assert await reward.ascore_batch(PAIRS) == pytest.approx(
        await wide.ascore_batch(PAIRS), abs=1e-4
    )
    assert reward.requests_sent == wide.requests_sent == len(PAIRS)


@session_loop
async def test_reward_empty_batch_sends_nothing(vllm_servers: VLLMServers) -> None:
    reward = _reward(vllm_servers)
    assert await reward.ascore_batch([]) == []
    assert reward.requests_sent == 0


@session_loop
async def test_reward_http_error_is_reward_error(vllm_servers: VLLMServers) -> None:
    reward = VLLMServerReward(
        vllm_servers.reward_url,
        "no-such-model",
        tokenizer_path=vllm_servers.reward_tokenizer_path,
    )
    with pytest.raises(RewardError, match=r"HTTP 404.*no-such-model"):
        await reward.ascore_batch(PAIRS[:1])


@session_loop
async def test_reward_server_down_is_backend_unavailable() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    reward = VLLMServerReward(url, "tiny-rm", tokenizer_path=build_tiny_reward_model())
    await reward.tokenizer()  # load outside the timed part
    started = time.monotonic()
    with pytest.raises(BackendUnavailableError, match=url):
        await reward.ascore_batch(PAIRS[:2])
    assert time.monotonic() - started < 5.0
    assert reward.requests_sent == 1


@session_loop
async def test_reward_over_two_urls_sends_around_a_dead_server(vllm_servers: VLLMServers) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    reward = VLLMServerReward(f"{dead},{vllm_servers.reward_url}", vllm_servers.reward_model)
    expected = await _reward(vllm_servers).ascore_batch(PAIRS)
    assert await reward.ascore_batch(PAIRS) == pytest.approx(expected, abs=1e-4)
    stats = reward.balancer.stats()
    assert stats[dead]["failures"] >= 1 and stats[dead]["set_aside"]
    assert stats[vllm_servers.reward_url]["requests"] >= len(PAIRS)
    assert stats[vllm_servers.reward_url]["failures"] == 0


@session_loop
async def test_reward_messages_server_down_is_backend_unavailable() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    reward = VLLMServerReward(url, "tiny-rm")
    with pytest.raises(BackendUnavailableError, match=url):
        await reward.ascore_batch(PAIRS[:3])


def test_chat_model_url_is_normalised_and_validated() -> None:
    assert str(vllm_chat_model("http://h:1", "m").openai_api_base) == "http://h:1/v1"
    assert str(vllm_chat_model("http://h:1/v1/", "m").openai_api_base) == "http://h:1/v1"
    with pytest.raises(ValueError, match="ftp://h:1"):
        vllm_chat_model("ftp://h:1", "m")
    with pytest.raises(ValueError, match="'h:1'"):
        VLLMServerReward("h:1", "m", tokenizer_path=build_tiny_reward_model())
