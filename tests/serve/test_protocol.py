"""Request validation and response shapes of the Chat Completions endpoint (no server)."""

from __future__ import annotations

import pytest

from langgraph_tpo.config import TPOConfig
from langgraph_tpo.serve.protocol import (
    APIError,
    best_distinct,
    completion,
    completion_chunks,
    parse_request,
    run_usage,
)

DEFAULTS = TPOConfig(num_samples=3, max_iterations=1, max_tokens=64)
USER = [{"role": "user", "content": "Hi"}]


def parse(**body):
    return parse_request({"model": "tpo", "messages": USER, **body}, DEFAULTS)


def test_request_fields_become_the_run_settings() -> None:
    request = parse(
        temperature=0.2,
        top_p=0.9,
        max_completion_tokens=20,
        seed=3,
        tpo={"num_samples": 4, "patience": 1},
    )
    assert request.overrides == {
        "num_samples": 4,
        "patience": 1,
        "temperature": 0.2,
        "top_p": 0.9,
        "max_tokens": 20,
        "seed": 3,
    }
    assert request.config.max_iterations == 1 and request.config.num_samples == 4
    assert DEFAULTS.num_samples == 3  # the server's defaults are untouched


def test_every_tpo_config_field_is_accepted_in_the_tpo_object() -> None:
    values = TPOConfig().model_dump(exclude={"review_gradient"})
    assert parse(tpo=values).config.model_dump(exclude={"review_gradient"}) == values


def test_pipelines_force_their_mode() -> None:
    assert parse(model="tpo-bon").config.mode == "bon"
    assert parse(model="tpo-revision").config.mode == "revision"
    assert parse(tpo={"mode": "bon"}).config.mode == "bon"
    assert parse().config.mode == DEFAULTS.mode


def test_messages_roles_and_text_parts() -> None:
    request = parse(
        messages=[
            {"role": "developer", "content": "Be brief."},
            {
                "role": "user",
                "content": [{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}],
                "name": "ann",
            },
        ]
    )
    assert [(m.type, m.text) for m in request.conversation] == [
        ("system", "Be brief."),
        ("human", "Hello"),
    ]
    assert request.graph_input() == {"messages": request.conversation}  # no stop: not sent


def test_unknown_fields_are_400s_naming_them() -> None:
    with pytest.raises(APIError) as caught:
        parse(best_of=3)
    error = caught.value.body()["error"]
    assert error["param"] == "best_of" and error["code"] == "unknown_parameter"
    assert "unrecognized request argument" in error["message"]
    with pytest.raises(APIError) as caught:
        parse(id="chatcmpl-mine")  # the answer's id is the server's, not a request field
    assert caught.value.param == "id"


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([{"role": "user", "content": 3}], "messages[0].content"),
        (
            [{"role": "user", "content": [{"type": "text", "text": 1}]}],
            "messages[0].content[0].text",
        ),
        (["hi"], "messages[0]"),
        ([{"role": "user", "content": "a"}, {"role": "bot", "content": "b"}], "messages[1].role"),
        ([{"role": "user", "content": "a", "tool_calls": [{"id": "x"}]}], "messages[0].tool_calls"),
    ],
)
def test_bad_messages_name_the_message_and_field(messages, param) -> None:
    with pytest.raises(APIError) as caught:
        parse(messages=messages)
    assert caught.value.param == param and caught.value.message.startswith(f"{param}: ")


def test_penalties_at_the_top_level_become_the_runs_settings() -> None:
    config = parse(frequency_penalty=0.5, presence_penalty=-0.25, repetition_penalty=1.1).config
    assert (config.frequency_penalty, config.presence_penalty) == (0.5, -0.25)
    assert config.repetition_penalty == 1.1
    with pytest.raises(APIError) as caught:
        parse(frequency_penalty=3)
    assert caught.value.status == 400 and "frequency_penalty" in caught.value.message


def test_no_op_values_of_unsupported_fields_are_accepted() -> None:
    parse(
        logprobs=False,
        tools=[],
        response_format={"type": "text"},
        user="u1",
        stream_options=None,
        stop=None,
    )
    with pytest.raises(APIError) as caught:
        parse(logprobs=True)
    assert caught.value.param == "logprobs" and caught.value.code == "unsupported_parameter"


def test_stop_is_a_string_or_up_to_four_and_goes_to_the_graph() -> None:
    assert parse(stop="\n").stop == ["\n"]
    request = parse(stop=["END", "\n\n"])
    assert request.graph_input()["stop"] == ["END", "\n\n"]
    assert parse(stop=[]).graph_input() == {"messages": request.conversation}
    for bad in ([""], ["a", 3], ["a", "b", "c", "d", "e"], 7):
        with pytest.raises(APIError) as caught:
            parse(stop=bad)
        assert caught.value.param == "stop" and caught.value.status == 400


def test_same_value_at_top_level_and_in_tpo_is_no_conflict() -> None:
    assert parse(temperature=0.5, tpo={"temperature": 0.5}).config.temperature == 0.5
    with pytest.raises(APIError) as caught:
        parse(temperature=0.5, tpo={"temperature": 0.6})
    assert caught.value.param == "temperature" and "tpo.temperature" in caught.value.message


@pytest.mark.parametrize("body", [[], "x", None])
def test_body_must_be_an_object(body) -> None:
    with pytest.raises(APIError) as caught:
        parse_request(body, DEFAULTS)
    assert caught.value.status == 400 and caught.value.body()["error"]["type"] == (
        "invalid_request_error"
    )


def test_nan_is_rejected() -> None:
    with pytest.raises(APIError) as caught:
        parse(tpo={"score_threshold": float("nan")})
    assert caught.value.param == "tpo.score_threshold"


def candidates(*pairs):
    return [{"text": t, "score": s, "iteration": 0} for t, s in pairs]


def test_best_distinct_skips_duplicates_and_keeps_the_earliest_on_ties() -> None:
    cands = candidates(("a", 1.0), ("b", 3.0), ("b", 3.0), ("c", 3.0), ("d", 2.0))
    assert [c["text"] for c in best_distinct(cands, 3)] == ["b", "c", "d"]
    assert [c["text"] for c in best_distinct(cands, 9)] == ["b", "c", "d", "a"]


def test_usage_sums_every_iteration() -> None:
    out = {
        "trajectory": [
            {"usage": {"prompt_tokens": 5, "completion_tokens": 7}},
            {"usage": {"prompt_tokens": 11, "completion_tokens": 13}},
            {},
        ]
    }
    assert run_usage(out).model_dump(exclude_none=True) == {
        "prompt_tokens": 16,
        "completion_tokens": 20,
        "total_tokens": 36,
    }


def test_chunks_carry_each_answer_whole_with_its_finish_reason() -> None:
    text = "one two  three\nfour five six seven eight nine ten eleven twelve thirteen " * 3
    request = parse(stream=True, stream_options={"include_usage": True}, n=2)
    out = {
        "candidates": candidates((text, 9.0), ("short", 1.0)),
        "score": 9.0,
        "trajectory": [],
        "cut_at_max_tokens": [text],
    }
    chunks = completion_chunks(request, out)
    for index, (answer, finish) in enumerate([(text, "length"), ("short", "stop")]):
        mine = [
            c["choices"][0] for c in chunks if c["choices"] and c["choices"][0]["index"] == index
        ]
        assert [c["delta"].get("content") for c in mine] == ["", answer, None]
        assert mine[0]["delta"]["role"] == "assistant"
        assert [c["finish_reason"] for c in mine] == [None, None, finish]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 0
    assert chunks[-2]["tpo"]["choice_scores"] == [9.0, 1.0]


def test_finish_reason_is_length_only_for_an_answer_cut_at_max_tokens() -> None:
    request = parse(n=2)
    out = {"candidates": candidates(("cut", 2.0), ("whole", 1.0)), "cut_at_max_tokens": ["cut"]}
    body = completion(request, out)
    assert [c["finish_reason"] for c in body["choices"]] == ["length", "stop"]
    assert body["object"] == "chat.completion" and body["choices"][0]["message"]["content"] == "cut"
    assert (
        completion(parse(), {"candidates": candidates(("x", 1.0))})["choices"][0]["finish_reason"]
        == "stop"
    )


def test_a_run_without_candidates_streams_its_summary_without_choices() -> None:
    out = {"candidates": [], "score": None, "trajectory": [], "stop_reason": "no_candidates"}
    (only,) = completion_chunks(parse(stream=True), out)
    assert only["choices"] == [] and only["tpo"]["stop_reason"] == "no_candidates"
