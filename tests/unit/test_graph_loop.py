"""The TPO loop with fake models: call counts, selection, stop rules, modes, trajectory."""

from __future__ import annotations

import math

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from langgraph_tpo import TPOConfig, create_tpo_graph
from langgraph_tpo.fakes import FakeBatchReward, FakeNPolicy, FakePolicy
from langgraph_tpo.graph import NODE_NAMES
from langgraph_tpo.prompts import UPDATE_END_TAG, UPDATE_START_TAG

QUERY = "How do I take care of a wooden table?"


def tagged(text: str) -> str:
    return f"{UPDATE_START_TAG}{text}{UPDATE_END_TAG}"


def length_reward(query: str, response: str) -> float:
    return float(len(response))


@pytest.mark.parametrize("n,d", [(5, 2), (3, 1), (1, 3), (2, 0)])
def test_tpo_generation_count_is_n_plus_d_times_2_plus_n(n: int, d: int) -> None:
    policy = FakePolicy()
    graph = create_tpo_graph(policy, length_reward, TPOConfig(num_samples=n, max_iterations=d))
    out = graph.invoke({"query": QUERY})
    assert policy.count() == n + d * (2 + n)
    assert policy.count("loss") == d and policy.count("gradient") == d
    assert len(out["candidates"]) == n + d * n
    assert len(out["trajectory"]) == d + 1


def test_n_capable_policy_draws_all_samples_in_one_request() -> None:
    policy = FakeNPolicy()
    graph = create_tpo_graph(policy, length_reward, TPOConfig(num_samples=5, max_iterations=2))
    graph.invoke({"query": QUERY})
    assert len(policy.calls) == 1 + 2 * 3  # sample, then loss + gradient + update per iteration
    assert [c["n"] for c in policy.calls if c["kind"] in ("sample", "update")] == [5, 5, 5]
    assert all(c["kwargs"]["n"] == 5 for c in policy.calls if c["kind"] == "update")
    assert policy.count() == 5 + 2 * (2 + 5)


def test_plain_policy_gets_n_concurrent_calls_with_distinct_seeds() -> None:
    policy = FakePolicy()
    graph = create_tpo_graph(
        policy, length_reward, TPOConfig(num_samples=4, max_iterations=0, seed=11)
    )
    graph.invoke({"query": QUERY})
    seeds = sorted(c["kwargs"]["seed"] for c in policy.calls)
    assert seeds == [11, 12, 13, 14]
    assert all(
        c["kwargs"]["temperature"] == 0.7 and c["kwargs"]["top_p"] == 0.95 for c in policy.calls
    )


def test_bon_samples_n_scores_once_and_stops() -> None:
    policy = FakePolicy()
    reward = FakeBatchReward()
    graph = create_tpo_graph(policy, reward, TPOConfig(num_samples=4, mode="bon"))
    out = graph.invoke({"query": QUERY})
    assert policy.count() == 4
    assert len(reward.batches) == 1
    assert out["stop_reason"] == "bon"
    assert [e.get("stop_reason") for e in out["trajectory"]] == ["bon"]


def test_selection_uses_the_whole_cache_not_only_the_newest_batch() -> None:
    # Initial answers score high; every update is worse, so chosen stays an initial answer
    # and rejected becomes the worst update.
    scores = {"answer 0": 5.0, "answer 1": 9.0, "answer 2": 7.0}

    def reward(query: str, response: str) -> float:
        return scores.get(response, -float(len(response)))

    def responder(kind: str, call: int, index: int) -> str:
        if kind == "update":
            return tagged("x" * (10 + call * 10 + index))
        return {"loss": "critique", "gradient": "advice"}.get(kind, f"answer {index}")

    policy = FakeNPolicy(responder=responder)
    out = create_tpo_graph(policy, reward, TPOConfig(num_samples=3, max_iterations=2)).invoke(
        {"query": QUERY}
    )
    second = out["trajectory"][2]
    assert second["chosen"]["text"] == "answer 1"  # from iteration 0
    assert second["rejected"]["text"] == "x" * 12  # worst of iteration 1, worse than iteration 0
    assert out["response"] == "answer 1" and out["score"] == 9.0
    update_prompts = [prompt_text(c) for c in policy.calls if c["kind"] == "update"]
    assert all("answer 1" in p for p in update_prompts)


def prompt_text(call: dict) -> str:
    return "\n".join(str(m.content) for m in call["messages"])


def test_best_response_is_the_best_ever_scored() -> None:
    out = create_tpo_graph(FakePolicy(), length_reward, TPOConfig(num_samples=3)).invoke(
        {"query": QUERY}
    )
    best = max(out["candidates"], key=lambda c: c["score"])
    assert (out["response"], out["score"]) == (best["text"], best["score"])
    bests = [e["best_score"] for e in out["trajectory"]]
    assert bests == sorted(bests)


def test_candidates_record_their_iteration() -> None:
    out = create_tpo_graph(
        FakeNPolicy(), length_reward, TPOConfig(num_samples=2, max_iterations=2)
    ).invoke({"query": QUERY})
    assert [c["iteration"] for c in out["candidates"]] == [0, 0, 1, 1, 2, 2]
    assert out["candidates"][2]["text"] == "improved answer 0.0"


def test_score_threshold_stops_early() -> None:
    policy = FakePolicy()
    out = create_tpo_graph(
        policy, length_reward, TPOConfig(num_samples=2, max_iterations=5, score_threshold=15)
    ).invoke({"query": QUERY})
    # initial answers score 8; the first update ("improved answer 0.x") scores 19
    assert out["stop_reason"] == "score_threshold"
    assert len(out["trajectory"]) == 2
    assert policy.count("update") == 2


def test_score_threshold_met_by_initial_samples_skips_the_loop() -> None:
    policy = FakePolicy()
    out = create_tpo_graph(policy, length_reward, TPOConfig(score_threshold=1.0)).invoke(
        {"query": QUERY}
    )
    assert out["stop_reason"] == "score_threshold" and policy.count("loss") == 0


def test_max_iterations_zero_returns_best_of_initial_samples() -> None:
    policy = FakePolicy()
    out = create_tpo_graph(policy, length_reward, TPOConfig(max_iterations=0)).invoke(
        {"query": QUERY}
    )
    assert out["stop_reason"] == "max_iterations" and policy.count() == 5


def test_patience_stops_when_best_does_not_improve() -> None:
    policy = FakePolicy()
    graph = create_tpo_graph(
        policy, lambda q, r: 1.0, TPOConfig(num_samples=2, max_iterations=10, patience=2)
    )
    out = graph.invoke({"query": QUERY})
    assert out["stop_reason"] == "patience"
    assert len(out["trajectory"]) == 3  # iteration 0, then two without improvement
    assert policy.count("update") == 4


def test_revision_mode_critiques_chosen_alone() -> None:
    policy = FakePolicy()
    out = create_tpo_graph(policy, length_reward, TPOConfig(num_samples=3, mode="revision")).invoke(
        {"query": QUERY}
    )
    loss_prompts = [c["messages"][-1].content for c in policy.calls if c["kind"] == "loss"]
    assert len(loss_prompts) == 2
    assert all("Rejected" not in p and "Chosen answer" in p for p in loss_prompts)
    assert policy.count() == 3 + 2 * (2 + 3)
    assert out["stop_reason"] == "max_iterations"


def test_tpo_mode_loss_prompt_holds_chosen_and_rejected() -> None:
    policy = FakeNPolicy()
    create_tpo_graph(policy, length_reward, TPOConfig(num_samples=3, max_iterations=1)).invoke(
        {"query": "q?"}
    )
    loss = next(c for c in policy.calls if c["kind"] == "loss")["messages"][-1].content
    assert "## Chosen answer\nanswer 0" in loss
    assert "## Rejected answer\nanswer 2" in loss  # all tie: best earliest, worst latest


def test_ties_keep_chosen_and_rejected_distinct() -> None:
    out = create_tpo_graph(
        FakeNPolicy(), lambda q, r: 0.0, TPOConfig(num_samples=3, max_iterations=1)
    ).invoke({"query": QUERY})
    entry = out["trajectory"][1]
    assert entry["chosen"]["text"] == "answer 0"
    assert entry["rejected"]["text"] == "answer 2"


def test_single_sample_falls_back_to_a_revision_style_loss() -> None:
    policy = FakePolicy()
    out = create_tpo_graph(
        policy, length_reward, TPOConfig(num_samples=1, max_iterations=1)
    ).invoke({"query": QUERY})
    loss = next(c for c in policy.calls if c["kind"] == "loss")["messages"][-1].content
    assert "Rejected" not in loss and "rejected" not in prompt_text(policy.calls[1])
    assert policy.count() == 1 + 1 * (2 + 1)
    assert len(out["candidates"]) == 2


def test_update_without_usable_text_is_recorded_and_the_loop_goes_on() -> None:
    def responder(kind: str, call: int, index: int) -> str:
        if kind == "update":
            return "   " if call == 0 else tagged(f"better answer number {index}")
        return f"{kind}" if kind != "sample" else f"answer {index}"

    policy = FakeNPolicy(responder=responder)
    out = create_tpo_graph(
        policy, length_reward, TPOConfig(num_samples=2, max_iterations=2)
    ).invoke({"query": QUERY})
    first, second = out["trajectory"][1], out["trajectory"][2]
    assert first["new_scores"] == [] and first["dropped"] == 2
    assert first["extraction"] == {"empty": 2}
    assert len(second["new_scores"]) == 2
    assert len(out["candidates"]) == 4  # the cache survived the empty iteration
    assert out["response"].startswith("better answer number")


def test_no_usable_initial_sample_stops_cleanly() -> None:
    policy = FakePolicy(responder=lambda kind, call, index: "")
    out = create_tpo_graph(policy, length_reward).invoke({"query": QUERY})
    assert out["stop_reason"] == "no_candidates"
    assert out["response"] == "" and out["score"] is None and out["candidates"] == []
    assert out["trajectory"][0]["dropped"] == 5


def test_trajectory_entries_hold_the_iteration_record() -> None:
    policy = FakeNPolicy()
    out = create_tpo_graph(
        policy, length_reward, TPOConfig(num_samples=3, max_iterations=2)
    ).invoke({"query": QUERY})
    t0, t1, t2 = out["trajectory"]
    assert t0["iteration"] == 0 and t0["chosen"] is None and t0["textual_loss"] is None
    assert set(t0["timings"]) == {"sample", "reward_score", "select"}
    assert set(t1["timings"]) == {
        "textual_loss",
        "textual_gradient",
        "update",
        "reward_score",
        "select",
    }
    assert all(v >= 0 for e in out["trajectory"] for v in e["timings"].values())
    assert t1["chosen"] == {"text": t0["best_response"], "score": t0["best_score"]}
    assert t1["textual_loss"] == "loss text 0" and t1["textual_gradient"] == "gradient text 0"
    assert t2["textual_loss"] == "loss text 1"
    assert t1["new_scores"] == [float(len(f"improved answer 0.{i}")) for i in range(3)]
    assert t1["mean_new_score"] == pytest.approx(sum(t1["new_scores"]) / 3)
    assert t1["usage"]["requests"] == 3 and t1["usage"]["generations"] == 5
    assert t0["usage"]["requests"] == 1 and t0["usage"]["generations"] == 3
    assert "stop_reason" not in t0 and "stop_reason" not in t1
    assert t2["stop_reason"] == "max_iterations" == out["stop_reason"]
    assert out["iteration"] == 2


def test_duplicate_texts_are_not_scored_twice() -> None:
    reward = FakeBatchReward()
    policy = FakePolicy(
        responder=lambda kind, call, index: (
            tagged("same") if kind == "update" else ("same" if kind == "sample" else kind)
        )
    )
    out = create_tpo_graph(policy, reward, TPOConfig(num_samples=3, max_iterations=1)).invoke(
        {"query": QUERY}
    )
    assert reward.batches == [["same"]]
    assert len(out["candidates"]) == 6


def test_reward_batch_holds_only_unscored_candidates() -> None:
    reward = FakeBatchReward()
    create_tpo_graph(FakeNPolicy(), reward, TPOConfig(num_samples=3, max_iterations=2)).invoke(
        {"query": QUERY}
    )
    assert [len(b) for b in reward.batches] == [3, 3, 3]
    assert reward.batches[1] == [f"improved answer 0.{i}" for i in range(3)]


def test_long_chosen_is_cut_to_max_context_tokens() -> None:
    long_answer = " ".join(f"w{i}" for i in range(500))
    policy = FakePolicy(
        responder=lambda kind, call, index: (
            long_answer if kind == "sample" else tagged("short") if kind == "update" else kind
        )
    )
    create_tpo_graph(
        policy, length_reward, TPOConfig(num_samples=1, max_iterations=1, max_context_tokens=50)
    ).invoke({"query": QUERY})
    loss = next(c for c in policy.calls if c["kind"] == "loss")["messages"][-1].content
    assert "w49" in loss and "w50" not in loss


def test_node_names_are_exactly_the_six() -> None:
    graph = create_tpo_graph(FakePolicy(), length_reward)
    assert set(graph.get_graph().nodes) - {"__start__", "__end__"} == set(NODE_NAMES)
    assert NODE_NAMES == (
        "sample",
        "reward_score",
        "select",
        "textual_loss",
        "textual_gradient",
        "update",
    )


def test_thread_reuse_with_checkpointer_starts_a_fresh_cache() -> None:
    graph = create_tpo_graph(
        FakePolicy(),
        length_reward,
        TPOConfig(num_samples=2, max_iterations=1),
        checkpointer=InMemorySaver(),
    )
    config = {"configurable": {"thread_id": "t"}}
    graph.invoke({"query": "first"}, config)
    out = graph.invoke({"query": "second"}, config)
    assert len(out["candidates"]) == 4 and len(out["trajectory"]) == 2
    assert out["query"] == "second"


def test_scores_are_finite_floats() -> None:
    out = create_tpo_graph(FakePolicy(), length_reward).invoke({"query": QUERY})
    assert all(
        isinstance(c["score"], float) and math.isfinite(c["score"]) for c in out["candidates"]
    )
