"""Sentences of the docs that are checked here rather than by a code block."""

from __future__ import annotations

from langgraph_tpo import TPOConfig, as_text_runnable, create_tpo_graph
from langgraph_tpo.fakes import FakeNPolicy


def test_as_text_runnable_streams_the_whole_response_as_one_chunk() -> None:
    graph = create_tpo_graph(
        FakeNPolicy(), lambda query, response: len(response), TPOConfig(max_iterations=1)
    )
    runnable = as_text_runnable(graph)
    chunks = list(runnable.stream("How do I take care of a wooden table?"))
    assert len(chunks) == 1  # the best response, once the run has ended
    assert isinstance(chunks[0], str) and "answer" in chunks[0]
