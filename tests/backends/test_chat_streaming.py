"""Stop sequences, LangSmith parameters and token streaming of the chat models the package
ships: TransformersChatModel on the real embedded SmolLM2 (a few tokens per call), and the
parts of the others that need no server (their standard suites run in tests/standard/)."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage

from langgraph_tpo import TPOConfig, create_tpo_graph
from langgraph_tpo.backends.inprocess.causal_lm import LoadedModel
from langgraph_tpo.backends.inprocess.transformers_chat import TransformersChatModel, _streamed_text
from langgraph_tpo.backends.inprocess.vllm_inprocess import VLLMChatModel
from langgraph_tpo.backends.plumbing.chat_base import first_stop, held_back
from langgraph_tpo.backends.servers.multi_server import BalancedChatModel
from langgraph_tpo.backends.servers.vllm_server import VLLMChatOpenAI
from langgraph_tpo.errors import ConfigError

STORY = [HumanMessage("Tell me a short story about a dragon.")]


def joined(chunks: list[Any]) -> str:
    """The text of streamed chunks (messages, or the generation chunks a model yields)."""
    return "".join(getattr(chunk, "message", chunk).content for chunk in chunks)


@pytest.mark.parametrize(
    ("text", "stop", "where", "held"),
    [
        ("Hello world", ["wor"], 6, 0),
        ("Hello world", ["xyz"], None, 0),
        ("Hello wo", ["world"], None, 2),  # "wo" may begin "world"
        ("Hello w", ["ww", "w"], 6, 1),
        ("abc", [""], None, 0),  # an empty stop string stops nothing
    ],
)
def test_stop_positions_and_held_back_tails(
    text: str, stop: list[str], where: int | None, held: int
) -> None:
    assert first_stop(text, stop) == where
    assert held_back(text, stop) == held


def test_streamed_text_never_shows_a_stop_string_or_what_follows() -> None:
    pieces = ["The cat ", "sat on", " the", " mat. ", "Then it left."]
    stream = _streamed_text(pieces, [" the mat"])
    shown = []
    try:
        while True:
            shown.append(next(stream).message.content)
    except StopIteration as end:
        returned = end.value
    assert "".join(shown) == returned == "The cat sat on"
    # the trailing " " and then " the" waited: each could begin the stop string
    assert shown == ["The cat", " sat on"]


def test_streamed_text_holds_back_half_a_character() -> None:
    # a generation cut at max_tokens inside a character: the streamer's last flush ends in
    # U+FFFD, which the stream never shows (invoke's text drops it too)
    assert joined(list(_streamed_text(["Un caf", "\ufffd"], []))) == "Un caf"


def test_stream_adds_up_to_invoke_with_usage_on_the_last_chunk(smollm2: LoadedModel) -> None:
    model = TransformersChatModel(max_tokens=12, seed=5)
    full = model.invoke(STORY)
    chunks = list(model.stream(STORY))
    assert len(chunks) >= 2
    assert joined(chunks) == full.content
    last = chunks[-1]
    assert last.chunk_position == "last"
    assert last.usage_metadata == full.usage_metadata
    assert last.response_metadata["finish_reason"] == full.response_metadata["finish_reason"]
    assert all(c.usage_metadata is None for c in chunks[:-1])


async def test_astream_stops_before_the_stop_string(smollm2: LoadedModel) -> None:
    model = TransformersChatModel(max_tokens=16, temperature=0)
    full = (await model.ainvoke(STORY)).content
    stop = " " + full.split()[3]
    cut = await model.ainvoke(STORY, stop=[stop])
    chunks = [chunk async for chunk in model.astream(STORY, stop=[stop])]
    assert cut.content == full[: full.index(stop)]
    assert joined(chunks) == cut.content
    assert chunks[-1].response_metadata["finish_reason"] == "stop"
    assert cut.response_metadata["finish_reason"] == "stop"


def test_the_model_stop_field_applies_unless_a_call_sets_its_own(smollm2: LoadedModel) -> None:
    free = TransformersChatModel(max_tokens=10, temperature=0).invoke(STORY).content
    first = free.split()[1]
    stopped = TransformersChatModel(max_tokens=10, temperature=0, stop=[first])
    assert stopped.invoke(STORY).content == free[: free.index(first)]
    assert stopped.invoke(STORY, stop=["never-there"]).content == free


def test_several_samples_are_not_streamed() -> None:
    with pytest.raises(ConfigError, match="stream=False"):
        list(TransformersChatModel(max_tokens=2).stream(STORY, n=2))


async def test_the_graph_streams_the_embedded_model_text(smollm2: LoadedModel) -> None:
    """LangGraph's ``stream_mode="messages"`` shows the one-sample calls (loss, gradient) as
    they are written: more than one chunk per call; the N-sample calls come whole."""
    config = TPOConfig(num_samples=2, max_iterations=1, max_tokens=8, seed=3)
    graph = create_tpo_graph(TransformersChatModel(), lambda query, response: len(response), config)
    per_call: dict[str, list[Any]] = {}
    async for message, metadata in graph.astream(
        {"query": "Name a fruit."}, stream_mode="messages"
    ):
        if isinstance(message, AIMessageChunk):
            per_call.setdefault(message.id, []).append((metadata.get("tpo_step"), message))
    steps = {step for chunks in per_call.values() for step, _ in chunks}
    assert "textual_loss" in steps
    streamed = [chunks for chunks in per_call.values() if len(chunks) > 2]
    assert streamed, {k: len(v) for k, v in per_call.items()}


def test_standard_params_of_every_shipped_model() -> None:
    transformers = TransformersChatModel(max_tokens=7, temperature=0.2, stop=["##"])
    assert transformers._get_ls_params() == {
        "ls_provider": "transformers",
        "ls_model_name": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "ls_model_type": "chat",
        "ls_temperature": 0.2,
        "ls_max_tokens": 7,
        "ls_stop": ["##"],
    }
    assert transformers._get_ls_params(stop=["x"], max_tokens=3)["ls_stop"] == ["x"]
    vllm = VLLMChatModel(model="some/model")._get_ls_params(temperature=0.0)
    assert (vllm["ls_provider"], vllm["ls_model_name"], vllm["ls_temperature"]) == (
        "vllm", "some/model", 0.0,
    )  # fmt: skip
    client = VLLMChatOpenAI(model="smollm2", base_url="http://h:1/v1", api_key="k", max_tokens=9)
    balanced = BalancedChatModel(clients=[client], stop=["END"])._get_ls_params()
    assert balanced["ls_model_name"] == "smollm2" and balanced["ls_max_tokens"] == 9
    assert balanced["ls_stop"] == ["END"] and balanced["ls_model_type"] == "chat"
