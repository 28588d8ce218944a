"""The math verifier reward: equivalent final answers (fractions, decimals, LaTeX, units,
tuples) score 1.0, others 0.0; it reads the row's ``reference``."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("math_verify")

from langgraph_tpo import ConfigError, TPOConfig, create_tpo_graph  # noqa: E402
from langgraph_tpo.backends.factory import BackendSettings, build_reward  # noqa: E402
from langgraph_tpo.backends.rewards.math_verifier import MathVerifierReward, answers_match  # noqa: E402
from langgraph_tpo.fakes import FakeBatchReward, FakeNPolicy  # noqa: E402
from langgraph_tpo.reward import WeightedReward  # noqa: E402

EQUIVALENT = [
    ("The answer is $\\boxed{\\frac{1}{2}}$.", "0.5"),
    ("So we get $\\boxed{0.5}$", "\\frac{1}{2}"),
    ("$\\boxed{1/2}$", "\\dfrac{1}{2}"),
    ("$\\boxed{\\dfrac{5}{6}}$", "\\frac{5}{6}"),
    ("The side is $\\boxed{5 \\text{ cm}}$.", "5"),
    ("The side is $\\boxed{5}$.", "5 \\text{ cm}"),
    ("$\\boxed{(3, \\pi/2)}$", "\\left( 3, \\frac{\\pi}{2} \\right)"),
    ("$\\boxed{\\frac{\\sqrt{2}}{2}}$", "\\frac{\\sqrt2}{2}"),
    ("$\\boxed{x^2 + 2x + 1}$", "(x+1)^2"),
    ("Adding them up, the total is 12", "12"),
    ("$\\boxed{\\text{Evelyn}}$", "\\text{Evelyn}"),
]
DIFFERENT = [
    ("$\\boxed{\\frac{1}{3}}$", "0.5"),
    ("$\\boxed{13}$", "12"),
    ("$\\boxed{5 \\text{ cm}}$", "6"),
    ("$\\boxed{(3, \\pi)}$", "\\left( 3, \\frac{\\pi}{2} \\right)"),
    ("I do not know.", "12"),
    ("", "4"),
]


@pytest.mark.parametrize("response,reference", EQUIVALENT)
def test_equivalent_answers_match(response: str, reference: str) -> None:
    assert answers_match(response, reference)


@pytest.mark.parametrize("response,reference", DIFFERENT)
def test_different_answers_do_not_match(response: str, reference: str) -> None:
    assert not answers_match(response, reference)


def test_the_reward_scores_one_for_a_match_and_zero_otherwise() -> None:
    pairs = [([{"role": "user", "content": "1/2?"}], r) for r in ("$\\boxed{0.5}$", "$\\boxed{2}$")]
    scores = asyncio.run(MathVerifierReward().ascore_batch(pairs, row={"reference": "\\frac12"}))
    assert scores == [1.0, 0.0]


def test_a_slow_check_counts_as_wrong(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from langgraph_tpo.backends.rewards import math_verifier

    monkeypatch.setattr(math_verifier, "answers_match", lambda r, ref: time.sleep(0.3) or True)
    pairs = [([{"role": "user", "content": "?"}], "$\\boxed{1}$")]
    reward = MathVerifierReward(timeout_s=0.05)
    assert asyncio.run(reward.ascore_batch(pairs, row={"reference": "1"})) == [0.0]


def test_the_graph_gives_the_verifier_the_reference_of_the_row() -> None:
    def responder(kind: str, call: int, index: int) -> str:
        return ["$\\boxed{3}$", "$\\boxed{\\dfrac{5}{6}}$", "$\\boxed{1}$"][index % 3]

    graph = create_tpo_graph(
        FakeNPolicy(responder=responder), MathVerifierReward(), TPOConfig(num_samples=3)
    )
    out = graph.invoke({"query": "1/2 + 1/3?", "row": {"reference": "\\frac{5}{6}"}})
    assert out["score"] == 1.0 and "dfrac{5}{6}" in out["response"]


def test_settings_build_the_verifier_alone_or_weighted_with_a_reward_model() -> None:
    alone = build_reward(BackendSettings(reward="math"), FakeNPolicy())
    assert isinstance(alone, MathVerifierReward)
    settings = BackendSettings(
        reward="math",
        reward_factory="testsupport.fake_backends:reward",
        reward_weights="0.1, 10",
    )
    combined = build_reward(settings, FakeNPolicy())
    assert isinstance(combined, WeightedReward) and combined.row_fields == ("reference",)
    assert isinstance(combined.parts[0][0], FakeBatchReward)
    assert [w for _, w in combined.parts] == [0.1, 10.0]


@pytest.mark.parametrize(
    "settings,message",
    [
        ({"reward_weights": "1,2"}, "set reward"),
        ({"reward": "math", "reward_weights": "1,2"}, "set reward"),
        ({"reward": "math", "judge": True, "reward_weights": "1"}, "two numbers"),
        ({"reward": "math", "judge": True, "reward_weights": "a,b"}, "two numbers"),
    ],
)
def test_bad_reward_weights_are_a_config_error(settings: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        BackendSettings(**settings)
