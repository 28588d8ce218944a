"""Prompt sets: what each built-in set shows each step, choosing a set, validation, files,
the caps of responses and critiques, and scaffolding echoed back."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import SystemMessage
from langchain_core.prompts import ChatPromptTemplate

from langgraph_tpo import ConfigError, PromptSet, TPOConfig, create_tpo_graph
from langgraph_tpo.fakes import FakeNPolicy, FakePolicy
from langgraph_tpo.prompts import BUILTIN_SETS, COMPACT, PAPER, STEP_VARIABLES

QUERY = "How do I keep basil alive?"
CONFIG = TPOConfig(num_samples=3, max_iterations=2)
QUALITY = {"answer 0": 1.0, "answer 1": 3.0, "answer 2": 2.0}  # chosen: answer 1, rejected: 0


def reward(query: str, response: str) -> float:
    return QUALITY.get(response, 4.0 + len(response) / 100)


def run(prompts: Any = "paper", config: TPOConfig = CONFIG, **context: Any) -> FakeNPolicy:
    policy = FakeNPolicy()
    create_tpo_graph(policy, reward, config, prompts=prompts).invoke(
        {"query": QUERY}, context=context or None
    )
    return policy


def calls(policy: FakePolicy, kind: str) -> list[list[Any]]:
    return [c["messages"] for c in policy.calls if c["kind"] == kind]


def text(messages: list[Any]) -> str:
    return "\n".join(str(m.content) for m in messages)


def shape(messages: list[Any]) -> list[tuple[str, str]]:
    return [(m.type, str(m.content)) for m in messages]


# ------------------------------------------------------------------ the paper set


def test_paper_is_the_default_and_samples_with_a_system_prompt() -> None:
    policy = FakeNPolicy()
    create_tpo_graph(policy, reward, CONFIG).invoke({"query": QUERY})
    (sample,) = calls(policy, "sample")
    assert [m.type for m in sample] == ["system", "human"]
    assert sample[0].content == PAPER.sample.messages[0].prompt.template
    assert sample[1].content == QUERY


def test_a_conversations_own_system_message_replaces_the_sets() -> None:
    policy = FakeNPolicy()
    messages = [SystemMessage("You are a pirate."), ("human", QUERY)]
    create_tpo_graph(policy, reward, CONFIG).invoke({"messages": messages})
    (sample,) = calls(policy, "sample")
    assert shape(sample) == [("system", "You are a pirate."), ("human", QUERY)]


def test_paper_loss_sees_query_chosen_and_rejected() -> None:
    loss = calls(run(), "loss")[0]
    body = text(loss)
    assert QUERY in body and "answer 1" in body and "answer 0" in body
    assert body.index("answer 0") < body.index("answer 1")  # rejected first, as the reference


@pytest.mark.parametrize("before,after", [("loss", "gradient"), ("gradient", "update")])
def test_paper_step_continues_the_previous_steps_conversation(before: str, after: str) -> None:
    """Gradient messages extend the loss messages exactly, update messages the gradient
    messages (the prefix property): the previous step's reply, then one new user turn."""
    policy = run()
    earlier, later = calls(policy, before), calls(policy, after)
    assert len(earlier) == len(later) == CONFIG.max_iterations
    for k, (prefix, extended) in enumerate(zip(earlier, later, strict=True)):
        assert shape(extended[: len(prefix)]) == shape(prefix)
        assert shape(extended[len(prefix) : len(prefix) + 1]) == [("ai", f"{before} text {k}")]
        assert len(extended) == len(prefix) + 2 and extended[-1].type == "human"


def test_paper_update_quotes_query_chosen_rejected_critique_and_suggestions() -> None:
    body = text(calls(run(), "update")[0])
    for seen in (QUERY, "answer 1", "answer 0", "loss text 0", "gradient text 0"):
        assert seen in body  # query, chosen, rejected, critique and suggestions


# Orders that would forbid the update step from doing its job, in any case.
NO_ANSWER_ORDERS = re.compile(
    r"do not (answer|write (a|the) (new )?(answer|response))|be concise|never answer",
    re.IGNORECASE,
)


def standing_instructions(messages: list[Any]) -> list[str]:
    """What binds the model's last turn: the system prompts, and the last user turn."""
    system = [str(m.content) for m in messages if m.type == "system"]
    return [*system, str(messages[-1].content)]


@pytest.mark.parametrize("name", sorted(BUILTIN_SETS))
@pytest.mark.parametrize("mode", ["tpo", "revision"])
def test_the_update_step_is_never_told_not_to_answer(name: str, mode: str) -> None:
    """The update's effective instructions (system prompts and its own turn) contain no
    order not to answer or to be brief; orders of earlier steps are scoped to their step."""
    policy = run(name, CONFIG.with_overrides({"mode": mode, "max_iterations": 1}))
    (update,) = calls(policy, "update")
    for instruction in standing_instructions(update):
        assert not NO_ANSWER_ORDERS.search(instruction), instruction
    assert update[-1].type == "human"
    last = str(update[-1].content).lower()
    assert "complete improved" in last and "ignore" in last  # the whole answer; may ignore


@pytest.mark.parametrize("name", sorted(BUILTIN_SETS))
def test_each_critique_step_states_its_own_role_in_its_own_turn(name: str) -> None:
    policy = run(name, CONFIG.with_overrides({"max_iterations": 1}))
    loss, gradient, update = (calls(policy, k)[0][-1] for k in ("loss", "gradient", "update"))
    assert all(m.type == "human" for m in (loss, gradient, update))
    assert "only the comparison" in str(loss.content) or "only the evaluation" in str(loss.content)
    assert "list of changes" in str(gradient.content)
    assert "already works" in str(gradient.content)  # leave alone what works


def test_paper_critique_steps_share_one_neutral_system_prompt() -> None:
    policy = run("paper", CONFIG.with_overrides({"max_iterations": 1}))
    systems = {
        kind: [str(m.content) for m in calls(policy, kind)[0] if m.type == "system"]
        for kind in ("loss", "gradient", "update")
    }
    assert systems["loss"] == systems["gradient"] == systems["update"]
    assert len(systems["loss"]) == 1 and not NO_ANSWER_ORDERS.search(systems["loss"][0])


@pytest.mark.parametrize("name", sorted(BUILTIN_SETS))
def test_revision_mode_quotes_no_rejected_response_anywhere(name: str) -> None:
    policy = run(name, CONFIG.with_overrides({"mode": "revision", "max_iterations": 1}))
    for call in policy.calls:
        if call["kind"] != "sample":
            assert "answer 0" not in text(call["messages"]), call["kind"]
            assert "answer 1" in text(call["messages"])


def test_compact_update_sees_query_chosen_and_suggestions_only() -> None:
    policy = run("compact")
    (sample,) = calls(policy, "sample")
    assert shape(sample) == [("human", QUERY)]  # no system prompt
    update = calls(policy, "update")[0]
    body = text(update)
    assert QUERY in body and "answer 1" in body and "gradient text 0" in body
    assert "answer 0" not in body and "loss text" not in body
    assert len(update) == 2


# ------------------------------------------------------------------ choosing a set


def test_a_run_can_name_another_built_in_set() -> None:
    policy = run("paper", prompt_set="compact")
    assert shape(calls(policy, "sample")[0]) == [("human", QUERY)]
    assert len(calls(policy, "update")[0]) == 2


def test_an_unknown_set_name_fails_before_any_model_call() -> None:
    policy = FakeNPolicy()
    graph = create_tpo_graph(policy, reward, CONFIG)
    with pytest.raises(ConfigError, match="unknown prompt set 'papr'; built-in sets: paper"):
        graph.invoke({"query": QUERY}, context={"prompt_set": "papr"})
    assert policy.calls == []
    with pytest.raises(ConfigError, match="unknown prompt set 'nope'"):
        create_tpo_graph(policy, reward, CONFIG, prompts="nope")
    with pytest.raises(ConfigError, match="unknown prompt set 'nope'"):
        create_tpo_graph(policy, reward, {"prompt_set": "nope"})


CUSTOM = PromptSet(
    name="code-review",
    sample=[("system", "You write careful, idiomatic Python.")],
    textual_loss=[
        ("human", "Task: {query}\nBetter patch:\n{chosen}\nWorse patch:\n{rejected}\nWhy?")
    ],
    textual_loss_revision=[("human", "Task: {query}\nPatch:\n{chosen}\nReview it.")],
    textual_gradient=[
        ("placeholder", "{loss_messages}"),
        ("ai", "{textual_loss}"),
        ("human", "Which changes would fix the review's points?"),
    ],
    update=[
        ("human", "Patch:\n{chosen}\nChanges:\n{textual_gradient}\nNew patch in {start}{end}.")
    ],
    update_start="[[PATCH {nonce}]]",
    update_end="[[/PATCH {nonce}]]",
)


def test_a_custom_set_with_its_own_wording_and_delimiters_runs() -> None:
    policy = FakeNPolicy()
    out = create_tpo_graph(policy, reward, CONFIG, prompts=CUSTOM).invoke({"query": QUERY})
    assert [c["kind"] for c in policy.calls] == ["sample"] + ["loss", "gradient", "update"] * 2
    assert calls(policy, "sample")[0][0].content == "You write careful, idiomatic Python."
    assert out["trajectory"][1]["extraction"] == {"tagged": 3}  # the fake used [[PATCH ...]]
    assert {c["text"] for c in out["candidates"] if c["iteration"] == 1} == {
        "improved answer 0.0",
        "improved answer 0.1",
        "improved answer 0.2",
    }


# ------------------------------------------------------------------ validation


def _paper_with(**steps: Any) -> dict[str, Any]:
    return {**PAPER.to_dict(), **steps}


@pytest.mark.parametrize(
    "steps,message",
    [
        (
            {
                "textual_loss": [
                    {"role": "human", "content": "{query} {chosen} {rejected} {answer}"}
                ]
            },
            r"prompt step 'textual_loss': unknown template variable \{answer\}",
        ),
        (
            {"textual_loss": [{"role": "human", "content": "{query} {chosen}"}]},
            r"prompt step 'textual_loss': the template must use the variable \{rejected\}",
        ),
        (
            {
                "textual_loss_revision": [
                    {"role": "human", "content": "{query} {chosen} {rejected}"}
                ]
            },
            r"'textual_loss_revision': unknown template variable \{rejected\}",
        ),
        (
            {"update": [{"role": "human", "content": "{textual_gradient} {start}"}]},
            r"prompt step 'update': the template must use the variable \{end\}",
        ),
        (
            {"textual_gradient": [{"role": "placeholder", "content": "{history}"}]},
            r"prompt step 'textual_gradient': unknown template variable \{history\}",
        ),
        (
            {"textual_gradient": [{"role": "human", "content": "{loss_messages} {textual_loss}"}]},
            r"\{loss_messages\} is a list of messages",
        ),
        (
            {"sample": [{"role": "robot", "content": "hi"}]},
            r"prompt step 'sample': unknown role 'robot'",
        ),
        ({"update_start": "<new>"}, r"update_start must contain \{nonce\}"),
        ({"update_end": "</new {nonce} {x}>"}, r"update_end must contain \{nonce\} and no other"),
        ({"extra": 1}, r"unknown key 'extra'"),
    ],
)
def test_invalid_sets_are_config_errors_naming_the_step_and_variable(
    steps: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        PromptSet.from_dict(_paper_with(**steps))


def test_every_step_has_a_documented_variable_list() -> None:
    assert set(STEP_VARIABLES) == {
        "sample",
        "textual_loss",
        "textual_loss_revision",
        "textual_gradient",
        "update",
    }
    readme = (Path(__file__).parents[2] / "docs" / "prompts.md").read_text(encoding="utf-8")
    for step, spec in STEP_VARIABLES.items():
        row = next(
            line
            for line in readme.splitlines()
            if line.startswith(f"| `{step}` |") and "`{" in line
        )
        for variable in spec.allowed:
            assert f"`{{{variable}}}`" in row, (step, variable)


# ------------------------------------------------------------------ files


@pytest.mark.parametrize("name", sorted(BUILTIN_SETS))
def test_shown_yaml_reads_back_as_the_same_set(name: str, tmp_path: Path) -> None:
    path = tmp_path / "set.yaml"
    path.write_text(BUILTIN_SETS[name].to_yaml(), encoding="utf-8")
    assert PromptSet.from_file(path) == BUILTIN_SETS[name]


def test_a_toml_file_is_read_too(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        """name = "mine"
sample = []
textual_loss = [{role = "human", content = "Q: {query}\\nA: {chosen}\\nB: {rejected}"}]
textual_loss_revision = [{role = "human", content = "Q: {query}\\nA: {chosen}"}]
textual_gradient = [
  {role = "placeholder", content = "{loss_messages}"},
  {role = "ai", content = "{textual_loss}"},
  {role = "human", content = "Suggestions?"},
]
update = [{role = "human", content = "{chosen}\\n{textual_gradient}\\nIn {start}...{end}"}]
""",
        encoding="utf-8",
    )
    mine = PromptSet.from_file(path)
    assert mine.name == "mine" and mine.delimiters("ab") == (
        "<improved_response_ab>",
        "</improved_response_ab>",
    )
    assert isinstance(mine.update, ChatPromptTemplate)


def test_unreadable_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the prompt set"):
        PromptSet.from_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [", encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot parse the prompt set"):
        PromptSet.from_file(bad)
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="expected a mapping"):
        PromptSet.from_file(listed)


# ------------------------------------------------------------------ caps


def test_critiques_and_responses_have_separate_caps() -> None:
    config = CONFIG.with_overrides({"max_tokens": 111, "critique_max_tokens": 777})
    policy = run(config=config)
    caps = {c["kind"]: c["kwargs"]["max_tokens"] for c in policy.calls}
    assert caps == {"sample": 111, "loss": 777, "gradient": 777, "update": 111}


def test_an_unset_critique_cap_follows_max_tokens() -> None:
    policy = run(config=CONFIG.with_overrides({"max_tokens": 64}))
    caps = {c["kind"]: c["kwargs"]["max_tokens"] for c in policy.calls}
    assert caps == {"sample": 64, "loss": 64, "gradient": 64, "update": 64}


# ------------------------------------------------------------------ scaffolding echoes


@pytest.mark.parametrize("prompts", [PAPER, COMPACT], ids=["paper", "compact"])
def test_outputs_that_echo_the_scaffolding_are_dropped_and_counted(prompts: PromptSet) -> None:
    header = "## Chosen answer" if prompts is PAPER else "### CHOSEN RESPONSE"

    def responder(kind: str, call: int, index: int) -> str:
        if kind == "sample":
            return [f"{header}\n", "a real answer", "<improved_response_1234abcd>"][index]
        if kind == "update":
            tagged = [f"<improved_response>{t}</improved_response>" for t in (header, "kept")]
            return [*tagged, ""][index]
        return kind

    policy = FakeNPolicy(responder=responder)
    config = TPOConfig(num_samples=3, max_iterations=1)
    out = create_tpo_graph(policy, reward, config, prompts=prompts).invoke({"query": QUERY})
    first, second = out["trajectory"]
    assert first["dropped"] == 2 and first["extraction"] == {"scaffolding": 2}
    assert second["extraction"] == {"scaffolding": 1, "tagged": 1, "empty": 1}
    assert [c["text"] for c in out["candidates"]] == ["a real answer", "kept"]


def test_an_echoed_format_line_cut_short_is_scaffolding_too() -> None:
    """An output that echoed the update's format line and ran out of tokens inside the
    closing delimiter is still nothing but scaffolding."""
    assert PAPER.is_scaffolding("(the improved answer)\n</improved_response_21e7")
    assert not PAPER.is_scaffolding("Water it weekly.\n</improved_response_21e7")


def test_a_real_answer_that_mentions_a_header_is_kept() -> None:
    assert not PAPER.is_scaffolding("## Chosen answer\nWater it every morning.")
    assert PAPER.is_scaffolding("## User query\n\n## Chosen answer\n")
    assert COMPACT.is_scaffolding("### SUGGESTIONS\n</improved_response_00ff>")


@pytest.mark.parametrize("name", sorted(BUILTIN_SETS))
def test_direct_rendering_equals_langchains_format_messages(name: str) -> None:
    from langgraph_tpo.prompts.render import Quoted, gradient_messages, update_messages

    prompts = BUILTIN_SETS[name]
    q = Quoted("q {not a field} ü", "chosen {x}", "rejected", "critique", "advice {{y}}")
    loss = prompts.textual_loss.format_messages(query=q.query, chosen=q.chosen, rejected="rejected")
    values = {"query": q.query, "chosen": q.chosen, "rejected": "rejected"}
    gradient = prompts.textual_gradient.format_messages(
        **{k: v for k, v in values.items() if k in prompts.textual_gradient.input_variables},
        loss_messages=loss,
        textual_loss="critique",
    )
    assert gradient_messages(prompts, q) == gradient
    update = prompts.update.format_messages(
        **{k: v for k, v in values.items() if k in prompts.update.input_variables},
        gradient_messages=gradient,
        textual_gradient="advice {{y}}",
        start="<s>",
        end="</s>",
    )
    assert update_messages(prompts, q, ("<s>", "</s>")) == update


def test_one_iteration_renders_the_shared_prefix_once() -> None:
    """The gradient and update calls carry the loss call's very message objects (rendered
    once), and a changed text is rendered anew, never served from the earlier render."""
    from dataclasses import replace

    from langgraph_tpo.prompts.render import (
        Quoted,
        gradient_messages,
        loss_messages,
        update_messages,
    )

    q = Quoted(query=QUERY, chosen="water weekly", rejected="never water")
    loss = loss_messages(PAPER, q)
    q = replace(q, textual_loss="the critique")
    gradient = gradient_messages(PAPER, q)
    q = replace(q, textual_gradient="the suggestions")
    update = update_messages(PAPER, q, ("<s>", "</s>"), 3)
    assert len(loss) < len(gradient) < len(update)
    assert all(a is b for a, b in zip(gradient, loss, strict=False))
    assert all(a is b for a, b in zip(update, gradient, strict=False))
    assert [m.content for m in update[: len(loss)]] == [m.content for m in loss]

    again = loss_messages(PAPER, replace(q, chosen="water daily"))
    assert "water daily" in text(again) and "water weekly" not in text(again)
    assert text(loss_messages(PAPER, Quoted(QUERY, "water weekly", "never water"))) == text(loss)
