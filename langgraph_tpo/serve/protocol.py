"""The Chat Completions wire format as pydantic models: the request validates itself, the
answers are the ``openai`` package's own types (plus the top-level ``tpo`` summary).

:func:`parse_request` validates a body against the server's default settings before any
model is called and returns a :class:`ChatCompletionRequest`; every problem becomes an
:class:`APIError` (an OpenAI-style error object with its HTTP status) whose ``param`` and
message name the offending field.
"""

from __future__ import annotations

import math
import time
import uuid
from typing import Any

from langchain_core.messages import BaseMessage, convert_to_messages
from openai.types import CompletionUsage, Model
from openai.types.chat import ChatCompletion, ChatCompletionChunk, ChatCompletionMessage
from openai.types.chat.chat_completion import Choice
from openai.types.chat.chat_completion_chunk import Choice as ChunkChoice
from openai.types.chat.chat_completion_chunk import ChoiceDelta
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

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
# Standard fields TPO cannot honour: accepted only with their no-op value.
NO_OP_VALUES: dict[str, tuple[Any, ...]] = {
    "logprobs": (False,),
    "top_logprobs": (0,),
    "tools": ([],),
    "functions": ([],),
    "tool_choice": ("none", "auto"),
    "function_call": ("none", "auto"),
    "response_format": ({"type": "text"},),
    "logit_bias": ({},),
    "modalities": (["text"],),
}
MAX_STOP = 4  # as OpenAI's API
NOT_OVER_HTTP = {
    "review_gradient": "it pauses for a human to edit the gradient and needs an interactive "
    "resume; use the Python API or LangGraph Studio",
}
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
UNKNOWN_FIELD = "unrecognized request argument (TPO settings go in the `tpo` object)"


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
        return ErrorResponse(
            error=ErrorInfo(message=self.message, type=self.kind, param=self.param, code=self.code)
        ).model_dump()


class ErrorInfo(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(BaseModel):
    """The body of every error answer."""

    error: ErrorInfo


def bad_request(param: str | None, message: str, code: str = "invalid_value") -> APIError:
    text = f"{param}: {message}" if param else message
    return APIError(400, text, param=param, code=code)


def invalid(message: str, field: str | None = None, code: str = "invalid_value") -> Exception:
    """A validation error of a request model; ``field`` is appended to the error's location
    (``tpo.num_samples`` for a setting, ``content[0]`` inside a message)."""
    return PydanticCustomError(code, message, {"field": field})


# --- the request -------------------------------------------------------------------------


class Message(BaseModel):
    """One message of ``messages``: a system (or developer), user or assistant turn whose
    content is a string or a list of text parts. Other keys (``name``) are ignored."""

    model_config = ConfigDict(extra="allow")

    role: Any = None
    content: Any = None
    tool_calls: Any = None
    function_call: Any = None

    @model_validator(mode="after")
    def _check(self) -> Message:
        if self.role not in ROLES:
            raise invalid(
                f"{self.role!r} is not supported; TPO answers a conversation of "
                f"{sorted(ROLES)} messages",
                "role",
            )
        if self.tool_calls or self.function_call:
            raise invalid("tool calls are not supported", "tool_calls")
        _check_content(self.content)
        if self.role == "user" and not self.as_langchain().text.strip():
            raise invalid("a user message must have non-empty text", "content")
        return self

    def as_langchain(self) -> BaseMessage:
        """The LangChain message (developer -> system); its ``.text`` is the text."""
        return convert_to_messages([{"role": ROLES[self.role], "content": self.content}])[0]


def _check_content(content: Any) -> None:
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise invalid("must be a string or a list of text parts", "content")
    for i, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") != "text":
            raise invalid("only text content parts are supported", f"content[{i}]")
        if not isinstance(part.get("text"), str):
            raise invalid("must be a string", f"content[{i}].text")


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: Any = None

    @field_validator("include_usage")
    @classmethod
    def _flag(cls, value: Any) -> bool:
        return _flag_value(value)


def _flag_value(value: Any) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise invalid(f"must be true or false, got {value!r}")
    return value


class ChatCompletionRequest(BaseModel):
    """A ``POST /v1/chat/completions`` body. Validated with the server's default settings in
    the validation context (``{"defaults": TPOConfig}``), it also holds the run's settings:
    :attr:`config` (defaults + this request) and :attr:`overrides` (what it changed)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(default=None, validate_default=True)  # type: ignore[assignment]
    messages: list[Message] = Field(default=None, validate_default=True)  # type: ignore[assignment]
    n: Any = None
    stream: bool = Field(default=None, validate_default=True)  # type: ignore[assignment]
    stream_options: StreamOptions | None = None
    stop: list[str] = Field(default=None, validate_default=True)  # type: ignore[assignment]
    tpo: dict[str, Any] = Field(default=None, validate_default=True)  # type: ignore[assignment]
    # settings (checked by TPOConfig)
    temperature: Any = None
    top_p: Any = None
    max_tokens: Any = None
    max_completion_tokens: Any = None
    seed: Any = None
    frequency_penalty: Any = None
    presence_penalty: Any = None
    repetition_penalty: Any = None
    # accepted only with their no-op value
    logprobs: Any = None
    top_logprobs: Any = None
    tools: Any = None
    functions: Any = None
    tool_choice: Any = None
    function_call: Any = None
    response_format: Any = None
    logit_bias: Any = None
    modalities: Any = None
    # accepted and ignored: they do not change what the reply is
    user: Any = None
    metadata: Any = None
    store: Any = None
    service_tier: Any = None
    parallel_tool_calls: Any = None
    prompt_cache_key: Any = None
    safety_identifier: Any = None

    _config: TPOConfig = PrivateAttr()
    _overrides: dict[str, Any] = PrivateAttr(default_factory=dict)
    _id: str = PrivateAttr(default_factory=lambda: f"chatcmpl-tpo-{uuid.uuid4().hex[:24]}")
    _created: int = PrivateAttr(default_factory=lambda: int(time.time()))

    @field_validator(*NO_OP_VALUES)
    @classmethod
    def _no_op(cls, value: Any, info: ValidationInfo) -> Any:
        allowed = NO_OP_VALUES[str(info.field_name)]
        if value is not None and value not in allowed:
            raise invalid(
                f"not supported by the TPO endpoint (accepted only as {allowed[0]!r})",
                code="unsupported_parameter",
            )
        return value

    @field_validator("model", mode="before")
    @classmethod
    def _model(cls, value: Any) -> str:
        if isinstance(value, str) and value in PIPELINES:
            return value
        if isinstance(value, str) and value:
            unknown = f"unknown model {value!r}; this server offers {sorted(PIPELINES)}"
            raise invalid(unknown, code="model_not_found")
        raise invalid(f"required: one of {sorted(PIPELINES)}")

    @field_validator("messages", mode="before")
    @classmethod
    def _messages(cls, value: Any) -> Any:
        if not isinstance(value, list) or not value:
            raise invalid("required: a non-empty list of messages")
        for i, message in enumerate(value):
            if not isinstance(message, dict):
                raise invalid("must be an object with role and content", f"[{i}]")
        return value

    @field_validator("stream", mode="before")
    @classmethod
    def _stream(cls, value: Any) -> bool:
        return _flag_value(value)

    @field_validator("stream_options", mode="before")
    @classmethod
    def _stream_options(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, dict):
            raise invalid("must be an object")
        return value

    @field_validator("stop", mode="before")
    @classmethod
    def _stop(cls, value: Any) -> list[str]:
        stop = [value] if isinstance(value, str) else value
        if stop is None:
            return []
        if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop):
            raise invalid(f"must be a non-empty string or a list of them, got {value!r}")
        if len(stop) > MAX_STOP:
            raise invalid(f"at most {MAX_STOP} stop sequences, got {len(stop)}")
        return stop

    @field_validator("tpo", mode="before")
    @classmethod
    def _tpo(cls, value: Any) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise invalid("must be an object of TPO settings")
        for name in value:
            if name in NOT_OVER_HTTP:
                raise invalid(f"not available over HTTP: {NOT_OVER_HTTP[name]}", f".{name}")
            if name not in TPOConfig.model_fields:
                raise invalid(
                    f"unknown TPO setting; known: {sorted(settable_fields())}",
                    f".{name}",
                    "unknown_parameter",
                )
        return value

    @model_validator(mode="after")
    def _run_settings(self, info: ValidationInfo) -> ChatCompletionRequest:
        if self.messages[-1].role not in ("user",):
            raise invalid(
                "the last message must be the user's turn to answer, got "
                f"{self.messages[-1].role!r}",
                "messages",
            )
        defaults = (info.context or {}).get("defaults") or TPOConfig()
        self._overrides, sources = self._settings()
        self._config = _config(defaults, self._overrides, sources)
        self.n = _n(self.n, self._config)
        return self

    def _settings(self) -> tuple[dict[str, Any], dict[str, str]]:
        """The TPOConfig values the request sets, and the request field each came from."""
        values: dict[str, Any] = dict(self.tpo)
        sources = {name: f"tpo.{name}" for name in values}
        for name, target in TOP_LEVEL_SETTINGS.items():
            value = getattr(self, name)
            if value is None:
                continue
            if target in values and values[target] != value:
                raise invalid(
                    f"conflicts with {sources[target]} ({values[target]!r} vs {value!r})", name
                )
            values[target], sources[target] = value, name
        forced = PIPELINES[self.model]
        if forced is not None:
            if values.get("mode", forced) != forced:
                raise invalid(
                    f"model {self.model!r} runs mode {forced!r}, got {values['mode']!r}",
                    "tpo.mode",
                )
            values["mode"], sources["mode"] = forced, "model"
        return values, sources

    @property
    def id(self) -> str:
        """The answer's id (``chatcmpl-tpo-...``)."""
        return self._id

    @property
    def created(self) -> int:
        return self._created

    @property
    def config(self) -> TPOConfig:
        """The run's full settings: the server's defaults with this request's applied."""
        return self._config

    @property
    def overrides(self) -> dict[str, Any]:
        """The settings this request changed (the run's LangGraph context)."""
        return self._overrides

    @property
    def conversation(self) -> list[BaseMessage]:
        """The messages as LangChain messages (the graph's ``messages`` input)."""
        return [m.as_langchain() for m in self.messages]

    @property
    def include_usage(self) -> bool:
        return bool(self.stream and self.stream_options and self.stream_options.include_usage)

    def graph_input(self) -> dict[str, Any]:
        """The TPO graph's input for this request: ``messages`` and, when set, ``stop``."""
        return {"messages": self.conversation, **({"stop": self.stop} if self.stop else {})}


def parse_request(body: Any, defaults: TPOConfig) -> ChatCompletionRequest:
    """Validate a Chat Completions body against the server's ``defaults``; raise APIError."""
    if not isinstance(body, dict):
        raise bad_request(None, "the request body must be a JSON object")
    try:
        return ChatCompletionRequest.model_validate(body, context={"defaults": defaults})
    except ValidationError as exc:
        raise api_error(exc) from None


def api_error(exc: ValidationError) -> APIError:
    """The 400 for a request model's first validation error, naming the field."""
    errors = exc.errors()
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    param = _param(first["loc"], (first.get("ctx") or {}).get("field"))
    if first["type"] == "extra_forbidden":
        return bad_request(param, UNKNOWN_FIELD, "unknown_parameter")
    code = first["type"] if first["type"] in _CODES else "invalid_value"
    return bad_request(param or None, first["msg"], code)


_CODES = frozenset({"unknown_parameter", "unsupported_parameter", "model_not_found"})


def _param(loc: tuple[int | str, ...], field: str | None) -> str:
    """``('messages', 2)`` + ``role`` -> ``messages[2].role``; ``('tpo',)`` + ``.x`` ->
    ``tpo.x``; ``()`` + ``tpo.mode`` -> ``tpo.mode``."""
    text = ""
    for part in (*loc, *([field] if field else [])):
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.startswith((".", "[")):
            text += part
        else:
            text += f".{part}" if text else part
    return text


def settable_fields() -> set[str]:
    """The TPOConfig fields a request may set in its ``tpo`` object."""
    return set(TPOConfig.model_fields) - set(NOT_OVER_HTTP)


def _config(defaults: TPOConfig, values: dict[str, Any], sources: dict[str, str]) -> TPOConfig:
    for name, value in values.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise invalid(f"must be a finite number, got {value!r}", sources[name])
    try:
        return make_config({**defaults.model_dump(), **values})
    except ConfigError as exc:
        cause = exc.__cause__
        if isinstance(cause, ValidationError) and cause.errors():
            first = cause.errors()[0]
            name = str(first["loc"][0]) if first["loc"] else ""
            raise invalid(
                f"{first['msg']} (got {first['input']!r})", sources.get(name, name or None)
            ) from None
        raise invalid(str(exc)) from None


def max_choices(config: TPOConfig) -> int:
    """How many candidates a run scores at most: N per sampling, D+1 samplings (1 in bon)."""
    rounds = 1 if config.mode == "bon" else config.max_iterations + 1
    return config.num_samples * rounds


def _n(value: Any, config: TPOConfig) -> int:
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise invalid(f"must be an integer >= 1, got {value!r}", "n")
    if value > max_choices(config):
        raise invalid(
            f"{value} choices asked, but this run scores at most {max_choices(config)} "
            f"candidates (num_samples={config.num_samples}, max_iterations="
            f"{config.max_iterations}, mode={config.mode!r})",
            "n",
        )
    return value


# --- the answers -------------------------------------------------------------------------


class TPOSummary(BaseModel):
    """The top-level ``tpo`` object of an answer: what the optimization did."""

    score: float | None
    iterations: int
    stop_reason: str | None
    best_scores: list[float | None]
    choice_scores: list[float]
    mode: str
    num_samples: int
    max_iterations: int


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


def run_usage(out: dict[str, Any]) -> CompletionUsage:
    """Prompt and completion tokens of every policy call of the run."""
    usage = [entry.get("usage") or {} for entry in out.get("trajectory", [])]
    prompt = sum(int(u.get("prompt_tokens", 0)) for u in usage)
    completion = sum(int(u.get("completion_tokens", 0)) for u in usage)
    return CompletionUsage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )


def tpo_summary(
    out: dict[str, Any], choices: list[dict[str, Any]], config: TPOConfig
) -> TPOSummary:
    return TPOSummary(
        score=out.get("score"),
        iterations=out.get("iteration", 0),
        stop_reason=out.get("stop_reason"),
        best_scores=[entry.get("best_score") for entry in out.get("trajectory", [])],
        choice_scores=[c["score"] for c in choices],
        mode=config.mode,
        num_samples=config.num_samples,
        max_iterations=config.max_iterations,
    )


def finish_reason(out: dict[str, Any], text: str) -> str:
    """``length`` when the policy ended this answer at ``max_tokens``, else ``stop``."""
    return "length" if text in (out.get("cut_at_max_tokens") or ()) else "stop"


def envelope(request: ChatCompletionRequest, kind: str) -> dict[str, Any]:
    """What every completion body and chunk of ``request`` carries: id, object, created, model."""
    return {
        "id": request.id,
        "object": kind,
        "created": request.created,
        "model": request.model,
        "system_fingerprint": None,
    }


def completion(request: ChatCompletionRequest, out: dict[str, Any]) -> dict[str, Any]:
    """The ``chat.completion`` body for a finished run (its state ``out``)."""
    choices = best_distinct(out.get("candidates", []), request.n)
    body = ChatCompletion(
        **envelope(request, "chat.completion"),
        choices=[
            Choice(
                index=i,
                message=ChatCompletionMessage(role="assistant", content=c["text"], refusal=None),
                logprobs=None,
                finish_reason=finish_reason(out, c["text"]),  # type: ignore[arg-type]
            )
            for i, c in enumerate(choices)
        ],
        usage=run_usage(out),
        tpo=tpo_summary(out, choices, request.config).model_dump(),
    )
    return body.model_dump(mode="json", exclude_unset=True)


def chunk(request: ChatCompletionRequest, choices: list[ChunkChoice], **extra: Any) -> dict:
    """One ``chat.completion.chunk`` body."""
    body = ChatCompletionChunk(
        **envelope(request, "chat.completion.chunk"),
        choices=choices,
        **extra,
    )
    return body.model_dump(mode="json", exclude_unset=True)


def completion_chunks(request: ChatCompletionRequest, out: dict[str, Any]) -> list[dict]:
    """The finished run as chunks: per choice a role chunk, one content chunk with the
    answer's whole text as the policy wrote it (cut at ``stop``), a ``finish_reason``
    chunk; then (``include_usage``) a usage chunk. The run's last chunk carries ``tpo``."""
    body = completion(request, out)
    chunks = []
    for choice in body["choices"]:
        index, text = choice["index"], choice["message"]["content"]
        chunks.append(chunk(request, [_delta(index, ChoiceDelta(role="assistant", content=""))]))
        if text:
            chunks.append(chunk(request, [_delta(index, ChoiceDelta(content=text))]))
        chunks.append(chunk(request, [_delta(index, ChoiceDelta(), choice["finish_reason"])]))
    if not chunks:  # no candidate survived (all dropped): no choice, still the summary
        chunks.append(chunk(request, []))
    chunks[-1]["tpo"] = body["tpo"]
    if request.include_usage:
        chunks.append(chunk(request, [], usage=body["usage"], tpo=body["tpo"]))
    return chunks


def _delta(index: int, delta: ChoiceDelta, finish: str | None = None) -> ChunkChoice:
    return ChunkChoice(index=index, delta=delta, logprobs=None, finish_reason=finish)  # type: ignore[arg-type]


def model_card(name: str) -> dict[str, Any]:
    """``GET /v1/models`` entry of one pipeline."""
    card = Model(
        id=name,
        object="model",
        created=0,
        owned_by="langgraph-tpo",
        description=PIPELINE_DESCRIPTIONS[name],
    )
    return card.model_dump(mode="json")
