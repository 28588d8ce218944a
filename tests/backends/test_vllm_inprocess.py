"""In-process vLLM backend: a clear error without vLLM; one engine call per step with n=N."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field

import pytest

from langgraph_tpo import BackendUnavailableError, TPOConfig, create_tpo_graph
from langgraph_tpo.backends import vllm_inprocess
from langgraph_tpo.backends.vllm_inprocess import VLLMChatModel


def test_missing_vllm_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError
    with pytest.raises(BackendUnavailableError, match=r"langgraph-tpo\[vllm\]"):
        VLLMChatModel(model="any").invoke("hi")


@dataclass
class Output:
    text: str
    token_ids: list[int]
    finish_reason: str = "stop"


@dataclass
class Request:
    outputs: list[Output]
    prompt_token_ids: list[int] = field(default_factory=lambda: [1, 2, 3])


class FakeLLM:
    """Stands in for vllm.LLM: records chat calls, answers n outputs per request."""

    calls: list[tuple[list, dict]] = []

    def __init__(self, model: str, **engine_args) -> None:
        self.model = model

    def chat(self, conversations, params, use_tqdm=False):
        FakeLLM.calls.append((conversations, params))
        n = params["n"]
        return [
            Request(
                [
                    Output(f"<improved_response>v{i}</improved_response>", [7] * (i + 1))
                    for i in range(n)
                ]
            )
        ]


@pytest.fixture
def fake_vllm(monkeypatch: pytest.MonkeyPatch) -> type[FakeLLM]:
    module = types.SimpleNamespace(LLM=FakeLLM, SamplingParams=lambda **kw: kw)
    monkeypatch.setitem(sys.modules, "vllm", module)
    monkeypatch.setattr(vllm_inprocess, "_ENGINES", {})
    FakeLLM.calls = []
    return FakeLLM


def test_each_step_is_one_engine_call_with_n(fake_vllm: type[FakeLLM]) -> None:
    policy = VLLMChatModel(model="m", engine_args={"tensor_parallel_size": 2})
    graph = create_tpo_graph(
        policy,
        lambda q, r: float(len(r)),
        TPOConfig(num_samples=4, max_iterations=1, seed=3, max_tokens=9),
    )
    out = graph.invoke({"query": "q"})
    assert [params["n"] for _, params in fake_vllm.calls] == [4, 1, 1, 4]
    conversation, params = fake_vllm.calls[0]
    assert conversation == [[{"role": "user", "content": "q"}]]
    assert params == {"n": 4, "temperature": 0.7, "top_p": 0.95, "max_tokens": 9, "seed": 3}
    assert len(out["candidates"]) == 8
    assert out["trajectory"][0]["usage"]["completion_tokens"] == 1 + 2 + 3 + 4
    assert len(vllm_inprocess._ENGINES) == 1  # the engine is loaded once
