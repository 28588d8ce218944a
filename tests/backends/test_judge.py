"""JudgeReward: reading ratings from logprobs or text, retries, and the real SmolLM2."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from langgraph_tpo.backends.inprocess.causal_lm import LoadedModel
from langgraph_tpo.backends.inprocess.transformers_chat import TransformersChatModel
from langgraph_tpo.backends.rewards.judge import JudgeReward, logprob_rating, parse_rating
from langgraph_tpo.errors import ConfigError, RewardError
from langgraph_tpo.fakes import FakePolicy
from langgraph_tpo.prompts.judge import JUDGE_PROMPT, judge_messages
from langgraph_tpo.reward import BatchReward

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def entry(token: str, top: dict[str, float]) -> dict[str, Any]:
    """An OpenAI-format logprob entry; ``top`` maps tokens to probabilities."""
    logprob = math.log(top[token]) if token in top else -5.0
    return {
        "token": token,
        "logprob": logprob,
        "top_logprobs": [{"token": t, "logprob": math.log(p)} for t, p in top.items()],
    }


def reply(text: str, entries: list[dict[str, Any]] | None = None) -> AIMessage:
    metadata = {"logprobs": {"content": entries}} if entries is not None else {}
    return AIMessage(content=text, response_metadata=metadata)


class ScriptedJudge(FakePolicy):
    """Replies with the scripted messages in turn (the last one again once they run out);
    records each call (``messages``, ``kwargs``) as FakePolicy does, and how many run at once."""

    replies: list[AIMessage]
    delay: float = 0.0
    active: int = 0
    max_active: int = 0

    def _package(self, texts: list[str], messages: list[BaseMessage]) -> ChatResult:
        message = self.replies[min(len(self.calls) - 1, len(self.replies) - 1)]
        return ChatResult(generations=[ChatGeneration(message=message.model_copy())])

    async def _agenerate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        await asyncio.sleep(self.delay)
        self.active -= 1
        return self._generate(messages, stop, run_manager, **kwargs)


def scripted(*replies: AIMessage, **fields: Any) -> ScriptedJudge:
    return ScriptedJudge(replies=list(replies), **fields)


async def test_logprobs_give_the_expected_rating() -> None:
    top = {"7": 0.5, "8": 0.3, "Hello": 0.1, " 6": 0.1}
    model = scripted(reply("7", [entry("7", top), entry("<|im_end|>", {"<|im_end|>": 1.0})]))
    judge = JudgeReward(model)
    assert isinstance(judge, BatchReward)
    [score] = await judge.ascore_batch([(QUESTION, "Paris.")])
    assert score == pytest.approx((7 * 0.5 + 8 * 0.3 + 6 * 0.1) / 0.9)
    assert judge.last_methods == ["logprobs"]
    call = model.calls[0]
    kwargs = call["kwargs"]
    assert kwargs["logprobs"] is True and kwargs["top_logprobs"] == 10
    assert kwargs["temperature"] == 0 and kwargs["max_tokens"] == 8
    assert call["messages"][-1].content.endswith("Rating (1-10):")


async def test_rating_after_a_label_uses_that_position() -> None:
    entries = [
        entry("Rating", {"Rating": 0.9}),
        entry(":", {":": 1.0}),
        entry(" 9", {" 9": 0.6, " 8": 0.2, " 10": 0.2}),
    ]
    judge = JudgeReward(scripted(reply("Rating: 9", entries)))
    assert await judge.ascore_batch([(QUESTION, "Paris")]) == [pytest.approx(9.0)]
    assert judge.last_methods == ["logprobs"]


def test_ten_spelled_as_two_tokens() -> None:
    entries = [entry("1", {"1": 0.5, "9": 0.5}), entry("0", {"0": 0.8, "<|im_end|>": 0.2})]
    expected = (1 * 0.5 * 0.2 + 10 * 0.5 * 0.8 + 9 * 0.5) / 1.0
    assert logprob_rating(entries, 10, (1, 10)) == pytest.approx(expected)
    lone_one = [entry("1", {"1": 0.6, "2": 0.4}), entry("<|im_end|>", {"0": 0.25})]
    expected = (1 * 0.6 * 0.75 + 10 * 0.6 * 0.25 + 2 * 0.4) / 1.0
    assert logprob_rating(lone_one, 1, (1, 10)) == pytest.approx(expected)


def test_logprobs_are_ignored_when_they_disagree_with_the_text() -> None:
    entries = [entry("(", {"(": 1.0}), entry("1", {"1": 1.0})]
    assert logprob_rating(entries, 7, (1, 10)) is None
    assert logprob_rating([], 7, (1, 10)) is None


async def test_text_is_parsed_without_logprobs() -> None:
    judge = JudgeReward(scripted(reply("I would say 8/10.")), request_logprobs=False)
    assert await judge.ascore_batch([(QUESTION, "Paris.")]) == [8.0]
    assert judge.last_methods == ["parsed"]
    assert "logprobs" not in judge.chat_model.calls[0]["kwargs"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7", 7.0),
        ("Rating: 9", 9.0),
        ("Rating (1-10): 6", 6.0),
        ("Score is 4 out of 10", 4.0),
        ("I rate it 12, no, 3", 3.0),
        ("8.5", 8.5),
        ("none", None),
        ("0", None),
    ],
)
def test_parse_rating(text: str, expected: float | None) -> None:
    assert parse_rating(text, (1, 10)) == expected


async def test_unparseable_replies_are_retried_then_fail() -> None:
    model = scripted(reply("7"), reply("I cannot judge that."))
    judge = JudgeReward(model, max_retries=2, concurrency=1)
    with pytest.raises(RewardError) as info:
        await judge.ascore_batch([(QUESTION, "Paris."), (QUESTION, "Lyon.")])
    message = str(info.value)
    assert "candidate 1" in message and "after 3 attempts" in message
    assert "I cannot judge that." in message
    assert len(model.calls) == 4  # 1 for candidate 0, 3 for candidate 1
    retries = [c["kwargs"] for c in model.calls[1:]]
    assert [c.get("seed") for c in retries] == [None, 1, 2]
    assert [c["temperature"] for c in retries] == pytest.approx([0.0, 0.3, 0.6])


async def test_unreadable_lowest_scores_the_bottom_of_the_scale_and_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    model = scripted(reply("7"), reply("I cannot judge that."))
    judge = JudgeReward(model, max_retries=1, concurrency=1, unreadable="lowest", scale=(2, 9))

    scores = await judge.ascore_batch([(QUESTION, "Paris."), (QUESTION, "Lyon.")])

    assert scores == [7.0, 2.0]
    assert judge.last_methods == ["parsed", "unreadable"]
    assert len(model.calls) == 3  # candidate 1 was still retried
    assert "candidate 1" in caplog.text and "lowest rating" in caplog.text


def test_unreadable_policy_is_checked() -> None:
    with pytest.raises(ConfigError, match="unreadable"):
        JudgeReward(scripted(reply("5")), unreadable="ignore")  # type: ignore[arg-type]


async def test_a_retry_can_succeed() -> None:
    judge = JudgeReward(scripted(reply("Hmm."), reply("Rating: 6")), max_retries=1)
    assert await judge.ascore_batch([(QUESTION, "Paris.")]) == [6.0]


async def test_concurrency_is_bounded() -> None:
    model = scripted(reply("5"), delay=0.02)
    judge = JudgeReward(model, concurrency=2)
    scores = await judge.ascore_batch([(QUESTION, f"answer {i}") for i in range(7)])
    assert scores == [5.0] * 7 and model.max_active == 2


async def test_chat_model_errors_name_the_candidate() -> None:
    class Broken(ScriptedJudge):
        async def _agenerate(self, *args: Any, **kwargs: Any) -> ChatResult:
            raise TimeoutError("server went away")

    with pytest.raises(RewardError, match="candidate 0 failed: TimeoutError: server went away"):
        await JudgeReward(Broken(replies=[])).ascore_batch([(QUESTION, "Paris.")])


def test_bad_settings() -> None:
    with pytest.raises(ConfigError):
        JudgeReward(scripted(reply("1")), scale=(5, 5))
    with pytest.raises(ConfigError):
        JudgeReward(scripted(reply("1")), concurrency=0)


def test_judge_messages() -> None:
    conversation = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Name a colour."},
    ]
    messages = judge_messages(conversation, "Blue" * 50, scale=(1, 5), max_chars=20)
    assert [m["role"] for m in messages] == ["system", "user", "assistant"] * 1 + [
        "user",
        "assistant",
        "user",
    ]
    assert [m["content"] for m in messages if m["role"] == "assistant"] == ["4", "1"]
    last = messages[-1]["content"]
    assert "[User message]\nName a colour." in last
    assert "User: Hi\nAssistant: Hello!" in last and "System: Be brief." in last
    assert "BlueBlueBlueBlueBlue [...truncated]" in last
    assert last.endswith("Rating (1-5):")
    assert "{response}" in JUDGE_PROMPT
    with pytest.raises(RewardError, match="no user message"):
        judge_messages([{"role": "system", "content": "x"}], "y")


async def test_real_smollm2_gives_a_rating(smollm2: LoadedModel) -> None:
    policy = TransformersChatModel(n=4)  # the judge asks for one answer whatever the policy's n
    judge = JudgeReward(policy, concurrency=2)
    pairs = [(QUESTION, "The capital of France is Paris."), (QUESTION, "I like turtles.")]
    scores = await judge.ascore_batch(pairs)
    assert all(math.isfinite(s) and 1 <= s <= 10 for s in scores)
    assert set(judge.last_methods) <= {"logprobs", "parsed"}
    assert "logprobs" in judge.last_methods  # the few-shot prompt gets a digit first
