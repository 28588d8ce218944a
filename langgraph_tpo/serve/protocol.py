"""The Chat Completions wire format: request validation, response and chunk objects, errors.

:func:`parse_request` checks a request body in full before any model is called and turns it
into a :class:`ChatRequest`; every problem becomes an :class:`APIError` (an OpenAI-style
error object with its HTTP status) naming the offending field.
"""

from __future__ import annotations

import math
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from langgraph_tpo.config import TPOConfig, make_config
from langgraph_tpo.errors import ConfigError

# Pipeline offered as an OpenAI "model" -> the TPO mode it forces (None: the server's mode).
PIPELINES: dict[str, str | None] = {"tpo": None, "tpo-revision": "revision", "tpo-bon": "bon"}
PIPELINE_DESCRIPTIONS = {
    "tpo": "TPO with the server's configured mode (default: critique chosen against rejected)",
    "tpo-revision": "TPO revision mode: critique the chosen response alone",
    "tpo-bon": "best-of-N: sample N, score, return the best; no loop",
}
# Standard request fields that map to a TPOConfig field of the same meaning.
TOP_LEVEL_SETTINGS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "max_tokens": "max_tokens",
    "max_completion_tokens": "max_tokens",
    "seed": "seed",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
    "repetition_penalty": "repetition_penalty",  # vLLM's server takes it at the top level too
}
# Standard fields accepted and ignored: they do not change what the reply is.
IGNORED_FIELDS = frozenset(
    {
        "user",
        "metadata",
        "store",
        "service_tier",
        "parallel_tool_calls",
        "prompt_cache_key",
        "safety_identifier",
    }
)
# Standard fields TPO cannot honour: accepted only with their no-op value.
NO_OP_VALUES: dict[str, tuple[Any, ...]] = {
    "logprobs": (False,),
    "top_logprobs": (0,),
    "tools": ([],),
    "functions": ([],),
    "tool_choice": ("none", "auto"),
    "function_call": ("none", "auto"),
    "response_format": ({"type": "text"},),
    "stop": ([],),
    "logit_bias": ({},),
    "modalities": (["text"],),
}
KNOWN_FIELDS = frozenset(
    {"model", "messages", "n", "stream", "stream_options", "tpo"}
    | set(TOP_LEVEL_SETTINGS)
    | IGNORED_FIELDS
    | set(NO_OP_VALUES)
)
NOT_OVER_HTTP = {
    "review_gradient": "it pauses for a human to edit the gradient and needs an interactive "
    "resume; use the Python API or LangGraph Studio",
}
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


class APIError(Exception):
    """An error answered as ``{"error": {"message", "type", "param", "code"}}``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        kind: str = "invalid_request_error",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.kind = kind
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        }


def bad_request(param: str | None, message: str, code: str = "invalid_value") -> APIError:
    text = f"{param}: {message}" if param else message
    return APIError(400, text, param=param, code=code)


@dataclass
class ChatRequest:
    """A validated request: what to run and how to answer."""

    model: str
    messages: list[dict[str, str]]
    config: TPOConfig  # the run's full settings (server defaults + this request)
    overrides: dict[str, Any]  # the settings this request changed (the run's context)
    n: int = 1
    stream: bool = False
    include_usage: bool = False
    id: str = field(default_factory=lambda: f"chatcmpl-tpo-{uuid.uuid4().hex[:24]}")
    created: int = field(default_factory=lambda: int(time.time()))


def parse_request(body: Any, defaults: TPOConfig) -> ChatRequest:
    """Validate a Chat Completions body against the server's ``defaults``; raise APIError."""
    if not isinstance(body, dict):
        raise bad_request(None, "the request body must be a JSON object")
    _check_known_fields(body)
    model = _model(body.get("model"))
    messages = parse_messages(body.get("messages"))
    overrides, sources = _settings(body, model)
    config = _config(defaults, overrides, sources)
    n = _n(body.get("n"), config)
    stream = _flag(body, "stream")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise bad_request("stream_options", "must be an object")
    include_usage = bool(stream and options and _flag(options, "include_usage", "stream_options."))
    return ChatRequest(model, messages, config, overrides, n, stream, include_usage)


def _check_known_fields(body: dict[str, Any]) -> None:
    for name, value in body.items():
        if name not in KNOWN_FIELDS:
            raise bad_request(
                name,
                "unrecognized request argument (TPO settings go in the `tpo` object)",
                "unknown_parameter",
            )
        if name in NO_OP_VALUES and value is not None and value not in NO_OP_VALUES[name]:
            raise bad_request(
                name,
                f"not supported by the TPO endpoint (accepted only as {NO_OP_VALUES[name][0]!r})",
                "unsupported_parameter",
            )


def _model(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise bad_request("model", f"required: one of {sorted(PIPELINES)}")
    if value not in PIPELINES:
        raise bad_request(
            "model",
            f"unknown model {value!r}; this server offers {sorted(PIPELINES)}",
            "model_not_found",
        )
    return value


def parse_messages(value: Any) -> list[dict[str, str]]:
    """The conversation as ``{"role", "content"}`` dicts (developer -> system)."""
    if not isinstance(value, list) or not value:
        raise bad_request("messages", "required: a non-empty list of messages")
    conversation = [_message(i, m) for i, m in enumerate(value)]
    if conversation[-1]["role"] != "user":
        raise bad_request(
            "messages",
            f"the last message must be the user's turn to answer, got {value[-1]['role']!r}",
        )
    return conversation


def _message(index: int, message: Any) -> dict[str, str]:
    where = f"messages[{index}]"
    if not isinstance(message, dict):
        raise bad_request(where, "must be an object with role and content")
    role = message.get("role")
    if role not in ROLES:
        raise bad_request(
            f"{where}.role",
            f"{role!r} is not supported; TPO answers a conversation of {sorted(ROLES)} messages",
        )
    if message.get("tool_calls") or message.get("function_call"):
        raise bad_request(f"{where}.tool_calls", "tool calls are not supported")
    content = _text(message.get("content"), f"{where}.content")
    if role == "user" and not content.strip():
        raise bad_request(f"{where}.content", "a user message must have non-empty text")
    return {"role": ROLES[role], "content": content}


def _text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for i, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text":
                raise bad_request(f"{where}[{i}]", "only text content parts are supported")
            if not isinstance(part.get("text"), str):
                raise bad_request(f"{where}[{i}].text", "must be a string")
            texts.append(part["text"])
        return "".join(texts)
    raise bad_request(where, "must be a string or a list of text parts")


def _settings(body: dict[str, Any], model: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The TPOConfig values the request sets, and the request field each came from."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    extra = body.get("tpo")
    if extra is not None:
        if not isinstance(extra, dict):
            raise bad_request("tpo", "must be an object of TPO settings")
        for name, value in extra.items():
            if name in NOT_OVER_HTTP:
                raise bad_request(f"tpo.{name}", f"not available over HTTP: {NOT_OVER_HTTP[name]}")
            if name not in TPOConfig.model_fields:
                raise bad_request(
                    f"tpo.{name}",
                    f"unknown TPO setting; known: {sorted(settable_fields())}",
                    "unknown_parameter",
                )
            values[name], sources[name] = value, f"tpo.{name}"
    for name, target in TOP_LEVEL_SETTINGS.items():
        value = body.get(name)
        if value is None:
            continue
        if target in values and values[target] != value:
            raise bad_request(
                name,
                f"conflicts with {sources[target]} ({values[target]!r} vs {value!r})",
            )
        values[target], sources[target] = value, name
    forced = PIPELINES[model]
    if forced is not None:
        if values.get("mode", forced) != forced:
            raise bad_request(
                "tpo.mode", f"model {model!r} runs mode {forced!r}, got {values['mode']!r}"
            )
        values["mode"], sources["mode"] = forced, "model"
    return values, sources


def settable_fields() -> set[str]:
    """The TPOConfig fields a request may set in its ``tpo`` object."""
    return set(TPOConfig.model_fields) - set(NOT_OVER_HTTP)


def _config(defaults: TPOConfig, values: dict[str, Any], sources: dict[str, str]) -> TPOConfig:
    for name, value in values.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise bad_request(sources[name], f"must be a finite number, got {value!r}")
    try:
        return make_config({**defaults.model_dump(), **values})
    except ConfigError as exc:
        cause = exc.__cause__
        if isinstance(cause, ValidationError) and cause.errors():
            first = cause.errors()[0]
            name = str(first["loc"][0]) if first["loc"] else ""
            raise bad_request(
                sources.get(name, name or None), f"{first['msg']} (got {first['input']!r})"
            ) from None
        raise bad_request(None, str(exc)) from None


def max_choices(config: TPOConfig) -> int:
    """How many candidates a run scores at most: N per sampling, D+1 samplings (1 in bon)."""
    rounds = 1 if config.mode == "bon" else config.max_iterations + 1
    return config.num_samples * rounds


def _n(value: Any, config: TPOConfig) -> int:
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise bad_request("n", f"must be an integer >= 1, got {value!r}")
    if value > max_choices(config):
        raise bad_request(
            "n",
            f"{value} choices asked, but this run scores at most {max_choices(config)} "
            f"candidates (num_samples={config.num_samples}, max_iterations="
            f"{config.max_iterations}, mode={config.mode!r})",
        )
    return value


def _flag(body: dict[str, Any], name: str, prefix: str = "") -> bool:
    value = body.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise bad_request(f"{prefix}{name}", f"must be true or false, got {value!r}")
    return value


# --- responses ---------------------------------------------------------------------------


def best_distinct(candidates: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """The ``n`` best candidates with distinct texts, best first (earliest on ties, as
    ``select`` picks the response)."""
    ranked = sorted(candidates, key=lambda c: -c["score"])  # stable: earliest first on ties
    seen: set[str] = set()
    best = []
    for candidate in ranked:
        if candidate["text"] not in seen:
            seen.add(candidate["text"])
            best.append(candidate)
        if len(best) == n:
            break
    return best


def run_usage(out: dict[str, Any]) -> dict[str, int]:
    """Prompt and completion tokens of every policy call of the run."""
    usage = [entry.get("usage") or {} for entry in out.get("trajectory", [])]
    prompt = sum(int(u.get("prompt_tokens", 0)) for u in usage)
    completion = sum(int(u.get("completion_tokens", 0)) for u in usage)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def tpo_summary(out: dict[str, Any], choices: list[dict[str, Any]], config: TPOConfig) -> dict:
    """The top-level ``tpo`` object: what the optimization did."""
    return {
        "score": out.get("score"),
        "iterations": out.get("iteration", 0),
        "stop_reason": out.get("stop_reason"),
        "best_scores": [entry.get("best_score") for entry in out.get("trajectory", [])],
        "choice_scores": [c["score"] for c in choices],
        "mode": config.mode,
        "num_samples": config.num_samples,
        "max_iterations": config.max_iterations,
    }


def completion(request: ChatRequest, out: dict[str, Any]) -> dict[str, Any]:
    """The ``chat.completion`` object for a finished run."""
    choices = best_distinct(out.get("candidates", []), request.n)
    return {
        "id": request.id,
        "object": "chat.completion",
        "created": request.created,
        "model": request.model,
        "system_fingerprint": None,
        "choices": [
            {
                "index": i,
                "message": {"role": "assistant", "content": c["text"], "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
            for i, c in enumerate(choices)
        ],
        "usage": run_usage(out),
        "tpo": tpo_summary(out, choices, request.config),
    }


def chunk(request: ChatRequest, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """One ``chat.completion.chunk``."""
    return {
        "id": request.id,
        "object": "chat.completion.chunk",
        "created": request.created,
        "model": request.model,
        "system_fingerprint": None,
        "choices": choices,
        **extra,
    }


def completion_chunks(request: ChatRequest, out: dict[str, Any], piece_words: int = 8) -> list:
    """The finished run as chunks: per choice a role chunk, content chunks of a few words,
    a ``finish_reason`` chunk; then (``include_usage``) a usage chunk. The last chunk of the
    run also carries the ``tpo`` summary."""
    body = completion(request, out)
    chunks = []
    for choice in body["choices"]:
        index, text = choice["index"], choice["message"]["content"]
        chunks.append(chunk(request, [_delta(index, {"role": "assistant", "content": ""})]))
        for piece in _pieces(text, piece_words):
            chunks.append(chunk(request, [_delta(index, {"content": piece})]))
        chunks.append(chunk(request, [_delta(index, {}, "stop")]))
    chunks[-1]["tpo"] = body["tpo"]
    if request.include_usage:
        chunks.append(chunk(request, [], usage=body["usage"], tpo=body["tpo"]))
    return chunks


def _delta(index: int, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}


def _pieces(text: str, words: int) -> list[str]:
    """``text`` split after every ``words`` words, whitespace kept, so the pieces join back."""
    pieces, current, count = [], [], 0
    for token in _tokens(text):
        current.append(token)
        if not token.isspace():
            count += 1
        if count == words and token.isspace():
            pieces.append("".join(current))
            current, count = [], 0
    if current:
        pieces.append("".join(current))
    return pieces


def _tokens(text: str) -> list[str]:
    return re.findall(r"\s+|\S+", text)
