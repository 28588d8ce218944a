"""A policy served by several OpenAI-compatible servers (vLLM) of the same model.

:class:`BalancedChatModel` is a LangChain chat model over one ``ChatOpenAI`` per server. Each call
goes, whole, to one server chosen by a :class:`~langgraph_tpo.backends.plumbing.balancer.Balancer`
(fewest requests in flight); ``n`` stays in that one request, so a TPO run still sends 1+3D chat
requests, and the model has an ``n`` field, so :func:`langgraph_tpo.policy.supports_n` sees it. A
connection error or a 5xx sets the server aside and the same call goes to another. A streamed call
(one sample) streams from its server; it moves to another server only while nothing has been
yielded yet, since text already shown cannot be taken back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import openai
from langchain_core.language_models import LangSmithParams
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult, LLMResult
from langchain_openai import ChatOpenAI
from pydantic import ConfigDict, Field, PrivateAttr

from langgraph_tpo.backends.plumbing.balancer import Balancer
from langgraph_tpo.backends.plumbing.chat_base import ChatModelBase, check_one_sample
from langgraph_tpo.policy import openai_request


def policy_server_failed(exc: BaseException) -> bool:
    """True when the server, not the request, is at fault: no connection (refused, reset,
    dropped mid-answer, timed out) or an HTTP 5xx."""
    if isinstance(exc, openai.APIConnectionError):
        return True
    return isinstance(exc, openai.APIStatusError) and exc.status_code >= 500


class BalancedChatModel(ChatModelBase):
    """Chat completions spread over ``clients`` (one ``ChatOpenAI`` per server URL).

    A call's kwargs go to the chosen client, ``repetition_penalty`` and ``extra_body`` as
    :func:`~langgraph_tpo.policy.openai_request` puts them (over the client's ``extra_body``);
    ``stop`` (the call's, else the field) goes to the server, which ends the text before the
    first stop string. Streaming yields the chosen server's chunks (usage on the last one);
    a call for ``n > 1`` samples cannot be streamed (a ConfigError: pass ``stream=False``).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    clients: list[ChatOpenAI] = Field(min_length=1)
    model_name: str = ""
    n: int | None = None  # passed per call (kwargs); declared so supports_n() sees it
    _balancer: Balancer = PrivateAttr()
    _by_url: dict[str, ChatOpenAI] = PrivateAttr()

    def model_post_init(self, context: Any) -> None:
        self._by_url = {str(client.openai_api_base): client for client in self.clients}
        self._balancer = Balancer(list(self._by_url), "policy")
        if not self.model_name:
            self.model_name = self.clients[0].model_name

    @property
    def balancer(self) -> Balancer:
        """The balancer choosing the server of each call (counts per server in ``stats``)."""
        return self._balancer

    @property
    def base_url(self) -> str:
        """The servers' URLs, comma-separated (what error messages name)."""
        return ",".join(self._by_url)

    @property
    def openai_api_key(self) -> Any:
        """The clients' API key (the same for all), so errors can mask it."""
        return self.clients[0].openai_api_key

    @property
    def _llm_type(self) -> str:
        return "tpo-balanced-openai"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "base_urls": list(self._by_url)}

    async def acontext_window(self) -> int | None:
        """The smallest context window the servers report (None when none does)."""
        windows = [
            await ask() for c in self.clients if (ask := getattr(c, "acontext_window", None))
        ]
        known = [w for w in windows if w is not None]
        return min(known) if known else None

    def ls_model_name(self, kwargs: dict[str, Any]) -> str:
        return str(kwargs.get("model") or self.model_name)

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        """The first client's standard parameters (provider ``openai``: the protocol spoken
        to the servers), with this model's name and stop sequences."""
        params = self.clients[0]._get_ls_params(stop=self.stop_for(stop), **kwargs)
        params["ls_model_name"] = self.ls_model_name(kwargs)
        return params

    def _invocation(self, n: int | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        if n is None and self.n is not None:
            n = self.n
        return {**kwargs, "n": n} if n is not None else kwargs

    async def _achat(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> ChatResult:
        params = self._invocation(kwargs.pop("n", None), kwargs)

        async def send(url: str) -> LLMResult:
            # this model's run is the traced one: the client's own run would repeat it
            client = self._by_url[url]
            return await client.agenerate([messages], stop=stop, **openai_request(client, params))

        return _chat_result(await self._balancer.call(send, policy_server_failed))

    def _chat(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> ChatResult:
        params = self._invocation(kwargs.pop("n", None), kwargs)

        def send(url: str) -> LLMResult:
            client = self._by_url[url]
            return client.generate([messages], stop=stop, **openai_request(client, params))

        return _chat_result(self._balancer.call_sync(send, policy_server_failed))

    def _stream_invocation(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The kwargs of a streamed call: one sample, the usage in the last chunk."""
        params = self._invocation(kwargs.pop("n", None), kwargs)
        params.pop("stream", None)
        check_one_sample("BalancedChatModel", params.get("n"))
        return {**params, "stream_usage": True}

    async def _achat_stream(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> AsyncIterator[ChatGenerationChunk]:
        params, started = self._stream_invocation(kwargs), False

        def failed(exc: BaseException) -> bool:  # another server only before any text
            return not started and policy_server_failed(exc)

        for attempt in self._balancer.attempts(failed):
            with attempt:
                client = self._by_url[attempt.url]
                request = openai_request(client, params)
                async for message in client.astream(messages, stop=stop, **request):
                    started = True
                    yield ChatGenerationChunk(message=message)
                return

    def _chat_stream(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> Iterator[ChatGenerationChunk]:
        params, started = self._stream_invocation(kwargs), False

        def failed(exc: BaseException) -> bool:
            return not started and policy_server_failed(exc)

        for attempt in self._balancer.attempts(failed):
            with attempt:
                client = self._by_url[attempt.url]
                for message in client.stream(messages, stop=stop, **openai_request(client, params)):
                    started = True
                    yield ChatGenerationChunk(message=message)
                return

    def _combine_llm_outputs(self, llm_outputs: list[dict | None]) -> dict:
        """One prompt per call (what TPO sends): its token usage as the server reported it."""
        present = [output for output in llm_outputs if output]
        if len(present) == 1:
            return dict(present[0])
        return self.clients[0]._combine_llm_outputs(llm_outputs)


def _chat_result(result: LLMResult) -> ChatResult:
    return ChatResult(generations=list(result.generations[0]), llm_output=result.llm_output)
