"""Loops: the repetition rule, and sample/update dropping and counting degenerate outputs."""

from __future__ import annotations

import pytest

from langgraph_tpo import TPOConfig, create_tpo_graph
from langgraph_tpo.degeneration import LOOP_THRESHOLD, is_degenerate, repetition
from langgraph_tpo.fakes import FakeBatchReward, FakeNPolicy
from langgraph_tpo.prompts import UPDATE_END_TAG, UPDATE_START_TAG

# What `make demo` once returned: one line, slightly varied, eighteen times.
DEMO_LOOP = "\n\n".join(
    f"Your chosen answer is a {word} piece of yourself." for word in ["little", "well-loved"] * 9
)
GOOD_ANSWER = """Here is how to take care of a wooden table:

1. Dust it weekly with a soft, dry cloth.
2. Wipe spills at once; water leaves white rings.
3. Use coasters and placemats under hot or wet things.
4. Polish with a wax made for wood every few months.
5. Keep it out of direct sunlight, which fades the finish.

With these habits the table will look good for decades."""
# A list whose items start alike: some repeated 4-grams, far from a loop.
LIST_ANSWER = "\n".join(
    f"- Make sure you {verb} the {thing} before you start."
    for verb, thing in [("clean", "surface"), ("dry", "wood"), ("sand", "edges"), ("oil", "top")]
)
WORD_LOOP = "the best way is to " * 20
HAIKU = "Leaves fall, leaves fall\nred and gold\nleaves fall"


@pytest.mark.parametrize("text", [DEMO_LOOP, WORD_LOOP, "Yes.\n" * 6])
def test_loops_are_degenerate(text: str) -> None:
    assert is_degenerate(text)


@pytest.mark.parametrize("text", [GOOD_ANSWER, LIST_ANSWER, HAIKU, "", "ok ok ok ok"])
def test_answers_and_short_texts_are_not(text: str) -> None:
    assert not is_degenerate(text)


def test_the_shares_are_what_the_rule_documents() -> None:
    lines = repetition("a one\nb two\na one\na one")  # 2 of 4 lines repeat an earlier one
    assert lines.repeated_lines == 0.5 and lines.degenerate
    assert repetition("a one\nb two\nc three\na one").repeated_lines == 0.25
    assert repetition(DEMO_LOOP).repeated_ngrams > 0.8
    assert repetition(GOOD_ANSWER).repeated_ngrams < LOOP_THRESHOLD / 5


# ------------------------------------------------------------------ in the graph


def responder(loops: set[str]):
    """Update outputs and samples from the fake; the kinds in ``loops`` write a loop for
    their first sample."""

    def respond(kind: str, call: int, index: int) -> str:
        looping = kind in loops and index == 0
        if kind == "update":
            body = DEMO_LOOP if looping else f"improved answer {call}.{index}"
            return f"{UPDATE_START_TAG}{body}{UPDATE_END_TAG}"
        if kind == "sample":
            return DEMO_LOOP if looping else f"answer {index}"
        return f"{kind} text {call}"

    return respond


def run(loops: set[str], **config) -> tuple[dict, FakeNPolicy]:
    policy = FakeNPolicy(responder=responder(loops))
    reward = FakeBatchReward(lambda text: float(len(text)))  # the loop is the longest text
    settings = TPOConfig(num_samples=3, max_iterations=1, **config)
    out = create_tpo_graph(policy, reward, settings).invoke({"query": "How?"})
    return out, policy


def test_update_drops_a_loop_and_counts_it() -> None:
    out, _ = run({"update"})
    update = out["trajectory"][1]
    assert update["extraction"] == {"tagged": 2, "degenerate": 1}
    assert update["dropped"] == 1 and len(update["new_scores"]) == 2
    assert not any(is_degenerate(c["text"]) for c in out["candidates"])


def test_sample_drops_a_loop_and_counts_it() -> None:
    out, _ = run({"sample"})
    first = out["trajectory"][0]
    assert first["extraction"] == {"degenerate": 1} and first["dropped"] == 1
    assert not is_degenerate(out["response"])


def test_off_keeps_loops_as_the_reference_does() -> None:
    out, _ = run({"sample", "update"}, drop_loops=False)
    assert out["response"] == DEMO_LOOP  # the highest-scored text, loop or not
    assert all(entry["dropped"] == 0 for entry in out["trajectory"])
    assert "degenerate" not in (out["trajectory"][1]["extraction"] or {})


def test_sample_keeps_loops_when_every_output_loops() -> None:
    policy = FakeNPolicy(responder=lambda kind, call, index: DEMO_LOOP + f" {index}")
    out = create_tpo_graph(policy, FakeBatchReward(), TPOConfig(num_samples=2, max_iterations=0))
    result = out.invoke({"query": "How?"})
    first = result["trajectory"][0]
    assert first["extraction"] == {"degenerate": 2} and first["dropped"] == 0
    assert result["response"].startswith(DEMO_LOOP)  # an answer is still returned
