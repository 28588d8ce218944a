"""What the vLLM benchmarks compare: the TPO graph and the minimal direct chain, plus counters.

The direct chain is TPO's algorithm with nothing around it: the ``openai`` AsyncOpenAI client
and one ``httpx.AsyncClient``, short prompts of its own, and the same requests the graph
promises. Per prompt: one sampling request with ``n=N``; one ``/classify`` request per batch;
per iteration one loss request, one gradient request and one update request with ``n=N``,
then the new batch is scored. Chosen and rejected are the best and worst of the whole cache,
as in the graph, and the same seeds are used (``seed``; the update of iteration k:
``seed + k``).

Server counters come from vLLM's ``/metrics``: ``vllm:prompt_tokens_total`` counts a prompt
once per generated sequence (a request with ``n=5`` counts its prompt five times),
``vllm:generation_tokens_total`` counts every generated token.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field, make_dataclass, replace
from typing import Any

import httpx
from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.outputs import ChatResult
from langchain_openai import ChatOpenAI
from openai import AsyncOpenAI
from pydantic import PrivateAttr
from transformers import AutoTokenizer

from benchmarks.servers import CHAT, CLASSIFY, BenchServers
from langgraph_tpo import TPOConfig, create_tpo_graph
from langgraph_tpo.backends.inprocess.chat_template import render_batch_for_reward
from langgraph_tpo.backends.servers.vllm_server import VLLMServerReward, vllm_chat_model
from langgraph_tpo.extraction import extract_response
from langgraph_tpo.policy import STEP_HEADER
from langgraph_tpo.prompts import builtin_prompt_set
from langgraph_tpo.prompts.render import (
    Quoted,
    gradient_messages,
    loss_messages,
    make_nonce,
    sample_messages,
    update_messages,
)
from langgraph_tpo.reward import chat_role

WARMUP_PROMPT = "Say hello."
LOCAL_COMPUTE = {"source": "local_compute"}
LOSS = (
    "Question: {query}\n\nAnswer A: {chosen}\n\nAnswer B: {rejected}\n\n"
    "Answer A was preferred. Briefly say why, and what A still lacks."
)
GRADIENT = (
    "Question: {query}\n\nAnswer: {chosen}\n\nCritique: {loss}\n\n"
    "List brief suggestions to improve the answer."
)
UPDATE = (
    "Question: {query}\n\nAnswer: {chosen}\n\nSuggestions: {gradient}\n\n"
    "Rewrite the answer applying the suggestions. Output only the new answer."
)


@dataclass(frozen=True)
class Settings:
    """One TPO setting, shared by the graph and the direct chain."""

    n: int = 5
    d: int = 2
    max_tokens: int = 128
    seed: int = 1234
    temperature: float = 0.7
    top_p: float = 0.95
    prompts: str = "paper"  # the graph's prompt set (and SamePromptChain's)

    def tpo_config(self) -> TPOConfig:
        return TPOConfig(
            num_samples=self.n,
            max_iterations=self.d,
            max_tokens=self.max_tokens,
            critique_max_tokens=self.max_tokens,
            seed=self.seed,
            temperature=self.temperature,
            top_p=self.top_p,
        )


@dataclass(frozen=True)
class Call:
    """One policy request as sent: its kind (sample, loss, gradient, update), messages, n,
    and the tokens generated for it (all n sequences)."""

    kind: str
    messages: list[dict[str, str]]
    n: int
    completion_tokens: int = 0


# ---------------------------------------------------------------- server counters


# Each server counter: the server it is read from, the label filter (None: every series)
# and the metric. Counters has one field per entry.
COUNTER_SOURCES: dict[str, tuple[str, dict[str, str] | None, str]] = {
    "chat_requests": ("policy", CHAT, "http_requests_total"),
    "sequences": ("policy", None, "vllm:request_success_total"),
    "prompt_tokens": ("policy", None, "vllm:prompt_tokens_total"),
    "generation_tokens": ("policy", None, "vllm:generation_tokens_total"),
    "prefix_cache_queries": ("policy", None, "vllm:prefix_cache_queries_total"),
    "prefix_cache_hits": ("policy", None, "vllm:prefix_cache_hits_total"),
    "classify_requests": ("reward", CLASSIFY, "http_requests_total"),
    "reward_prompt_tokens": ("reward", None, "vllm:prompt_tokens_total"),
    # prompt tokens the policy computed (not served from its prefix cache)
    "computed_prompt_tokens": ("policy", LOCAL_COMPUTE, "vllm:prompt_tokens_by_source_total"),
}


def _combine(sign: float) -> Callable[[Any, Any], Any]:
    def combine(self: Any, other: Any) -> Any:
        return type(self)(
            **{name: getattr(self, name) + sign * getattr(other, name) for name in COUNTER_SOURCES}
        )

    return combine


Counters = make_dataclass(
    "Counters",
    [(name, float, field(default=0.0)) for name in COUNTER_SOURCES],
    frozen=True,
    namespace={
        "__doc__": "Server counters (or their difference over a run), one per COUNTER_SOURCES.",
        "__sub__": _combine(-1.0),
        "__add__": _combine(1.0),
    },
)


def read_counters(servers: BenchServers) -> Counters:
    readers = {"policy": servers.policy_metrics, "reward": servers.reward_metrics}
    pages: dict[tuple[str, str], dict[str, float]] = {}  # one /metrics read per filter

    def read(server: str, labels: dict[str, str] | None, metric: str) -> float:
        key = (server, repr(labels))
        if key not in pages:
            pages[key] = readers[server](labels)
        return pages[key].get(metric, 0.0)

    return Counters(**{name: read(*source) for name, source in COUNTER_SOURCES.items()})


def settled_counters(servers: BenchServers, timeout: float = 5.0) -> Counters:
    """Counters once two reads 0.2 s apart agree (vLLM may count just after answering)."""
    deadline = time.monotonic() + timeout
    previous = read_counters(servers)
    while time.monotonic() < deadline:
        time.sleep(0.2)
        current = read_counters(servers)
        if current == previous:
            return current
        previous = current
    return previous


DERIVED_FIGURES = ("requests", "prefill_tokens", "ms_per_generated_token", "generated_tokens_per_s")


@dataclass
class RunStats:
    """One timed run of one variant: wall time and the servers' counter deltas."""

    variant: str
    concurrency: int
    prompts: int
    wall_s: float
    counters: Counters
    mean_best_score: float | None = None
    round_wall_s: list[float] = field(default_factory=list)
    cold_prefix_cache: bool = False

    @property
    def requests(self) -> int:
        return int(self.counters.chat_requests + self.counters.classify_requests)

    @property
    def prefill_tokens(self) -> float:
        """Prompt tokens the server computed: counted minus prefix-cache hits."""
        return self.counters.prompt_tokens - self.counters.prefix_cache_hits

    @property
    def ms_per_generated_token(self) -> float:
        return 1000 * self.wall_s / max(self.counters.generation_tokens, 1.0)

    @property
    def generated_tokens_per_s(self) -> float:
        return self.counters.generation_tokens / self.wall_s if self.wall_s else 0.0

    def merged(self, other: RunStats) -> RunStats:
        """Two runs of the same variant as one (sums; score averaged over prompts)."""
        scores = [
            (s.mean_best_score, s.prompts) for s in (self, other) if s.mean_best_score is not None
        ]
        total = sum(p for _, p in scores)
        mean = sum(v * p for v, p in scores) / total if total else None
        return RunStats(
            self.variant,
            self.concurrency,
            self.prompts + other.prompts,
            self.wall_s + other.wall_s,
            self.counters + other.counters,
            mean,
            self.round_wall_s + other.round_wall_s,
            self.cold_prefix_cache and other.cold_prefix_cache,
        )

    def as_dict(self) -> dict[str, Any]:
        """The results record: the fields, the derived figures, and each counter."""
        record = asdict(self)
        counters = record.pop("counters")
        derived = {name: getattr(self, name) for name in DERIVED_FIGURES}
        return {**record, **derived, **counters}


# (queries, concurrency, seed) -> the best score of each query
Runner = Callable[[list[str], int, int], Awaitable[list[float]]]


async def measure(
    servers: BenchServers,
    variant: str,
    runner: Runner,
    queries: list[str],
    concurrency: int,
    seed: int,
) -> RunStats:
    """Run ``runner(queries, concurrency, seed)`` and take the servers' counter deltas.

    The policy server's prefix cache is emptied first where the server allows it: the
    variants send the same prompts, and the second of a pair would otherwise start warm."""
    cold = await asyncio.to_thread(servers.reset_prefix_cache)
    before = await asyncio.to_thread(settled_counters, servers)
    start = time.perf_counter()
    scores = await runner(queries, concurrency, seed)
    wall = time.perf_counter() - start
    after = await asyncio.to_thread(settled_counters, servers)
    mean = sum(scores) / len(scores) if scores else None
    return RunStats(variant, concurrency, len(queries), wall, after - before, mean, [wall], cold)


def interleaved(variants: Sequence[str], rounds: int) -> list[tuple[int, str]]:
    """``(round, variant)`` in A, B, B, A, A, B ... order, which cancels linear drift."""
    order: list[tuple[int, str]] = []
    for r in range(rounds):
        names = list(variants) if r % 2 == 0 else list(reversed(variants))
        order.extend((r, name) for name in names)
    return order


def round_inputs(queries: list[str], rounds: int, concurrency: int) -> list[list[str]]:
    """The prompts of each round: a chunk each when every chunk still fills ``concurrency``
    slots, else the whole set every round (repeats; each round then gets its own seed)."""
    if len(queries) >= rounds * concurrency:
        return split(queries, rounds)
    return [queries] * rounds


def split(items: list[str], parts: int) -> list[list[str]]:
    """``items`` in ``parts`` contiguous chunks of (nearly) equal size."""
    size, extra = divmod(len(items), parts)
    chunks, start = [], 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        chunks.append(items[start:end])
        start = end
    return chunks


# ---------------------------------------------------------------- the TPO graph


def tpo_graph(servers: BenchServers, settings: Settings, policy: Any = None) -> Any:
    """The TPO graph over the servers: ``vllm_chat_model`` + ``VLLMServerReward``."""
    policy = policy or vllm_chat_model(servers.policy_url, servers.policy_model)
    reward = VLLMServerReward(
        servers.reward_url, servers.reward_model, tokenizer_path=servers.reward_tokenizer_path
    )
    return create_tpo_graph(policy, reward, settings.tpo_config(), prompts=settings.prompts)


def tpo_runner(graph: Any) -> Runner:
    async def run(queries: list[str], concurrency: int, seed: int) -> list[float]:
        outs = await graph.abatch(
            [{"query": q} for q in queries],
            config={"max_concurrency": concurrency},
            context={"seed": seed},
        )
        return [float(o["score"]) for o in outs]

    return run


KINDS = {"textual_loss": "loss", "textual_gradient": "gradient"}


def call_kind(kwargs: dict[str, Any]) -> str:
    """Which TPO step sent a request (sample, loss, gradient or update): the step header
    the package sends with every call of an OpenAI-compatible policy."""
    step = (kwargs.get("extra_headers") or {}).get(STEP_HEADER, "sample")
    return KINDS.get(step, step)


def _as_dict(message: BaseMessage) -> dict[str, str]:
    """A message as the OpenAI client sends it (the role name ``type`` where it has none)."""
    return {"role": chat_role(message) or message.type, "content": str(message.content)}


class RecordingChatOpenAI(ChatOpenAI):
    """``ChatOpenAI`` that records every request it sends (kind, messages, n)."""

    _calls: list[Call] = PrivateAttr(default_factory=list)

    @property
    def calls(self) -> list[Call]:
        return self._calls

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        dicts = [_as_dict(m) for m in messages]
        result = await super()._agenerate(messages, stop=stop, run_manager=run_manager, **kwargs)
        usage = (result.llm_output or {}).get("token_usage") or {}
        generated = int(usage.get("completion_tokens") or 0)
        self._calls.append(Call(call_kind(kwargs), dicts, int(kwargs.get("n") or 1), generated))
        return result


# The ChatOpenAI fields vllm_chat_model sets (the server, the key, timeouts and retries).
CLIENT_FIELDS = (
    "model_name",
    "openai_api_base",
    "openai_api_key",
    "request_timeout",
    "max_retries",
)


def recording_policy(servers: BenchServers) -> RecordingChatOpenAI:
    """The graph's policy (as ``vllm_chat_model`` builds it), recording its requests."""
    reference = vllm_chat_model(servers.policy_url, servers.policy_model)
    return RecordingChatOpenAI(**{name: getattr(reference, name) for name in CLIENT_FIELDS})


def chat_prompt_tokens(tokenizer: Any, messages: list[dict[str, str]]) -> int:
    """Prompt tokens of one request, as the server counts them (chat template applied)."""
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    if hasattr(ids, "keys"):
        ids = ids["input_ids"]
    return len(ids)


# ---------------------------------------------------------------- the direct chain


class DirectChain:
    """TPO with the ``openai`` client and httpx only, and short prompts."""

    def __init__(self, servers: BenchServers, settings: Settings) -> None:
        self.servers = servers
        self.settings = settings
        self.client = AsyncOpenAI(
            base_url=servers.policy_openai_url, api_key="EMPTY", timeout=600.0, max_retries=0
        )
        self.http = httpx.AsyncClient(timeout=120.0)
        self.tokenizer = AutoTokenizer.from_pretrained(
            servers.reward_tokenizer_path, local_files_only=True
        )
        self.calls: list[Call] = []  # every policy request: (kind, messages, n)

    async def aclose(self) -> None:
        await self.client.close()
        await self.http.aclose()

    async def chat(self, content: str, n: int, seed: int, kind: str) -> list[str]:
        return await self.chat_messages([HumanMessage(content)], n, seed, kind)

    async def chat_messages(
        self, turns: Sequence[BaseMessage], n: int, seed: int, kind: str
    ) -> list[str]:
        s = self.settings
        messages = [_as_dict(turn) for turn in turns]
        response = await self.client.chat.completions.create(
            model=self.servers.policy_model,
            messages=messages,  # type: ignore[arg-type]
            n=n,
            max_tokens=s.max_tokens,
            temperature=s.temperature,
            top_p=s.top_p,
            seed=seed,
        )
        generated = response.usage.completion_tokens if response.usage else 0
        self.calls.append(Call(kind, messages, n, generated))
        return [choice.message.content or "" for choice in response.choices]

    async def score(self, query: str, texts: list[str]) -> list[float]:
        conversation = [{"role": "user", "content": query}]
        rendered = render_batch_for_reward(self.tokenizer, [(conversation, t) for t in texts])
        payload = {"model": self.servers.reward_model, "input": rendered, "use_activation": False}
        response = await self.http.post(self.servers.reward_url + "/classify", json=payload)
        response.raise_for_status()
        data = sorted(response.json()["data"], key=lambda item: item["index"])
        return [float(item["probs"][0]) for item in data]

    async def run(self, query: str, seed: int) -> float:
        """One prompt through the whole chain; returns the best score."""
        s = self.settings
        texts = [t for t in await self.chat(query, s.n, seed, "sample") if t.strip()]
        cache = list(zip(texts, await self.score(query, texts), strict=True))
        for k in range(1, s.d + 1):
            chosen = max(cache, key=lambda c: c[1])[0]
            rejected = min(reversed(cache), key=lambda c: c[1])[0]
            fill = {"query": query, "chosen": chosen, "rejected": rejected}
            loss = (await self.chat(LOSS.format(**fill), 1, seed, "loss"))[0]
            prompt = GRADIENT.format(**fill, loss=loss)
            gradient = (await self.chat(prompt, 1, seed, "gradient"))[0]
            prompt = UPDATE.format(**fill, gradient=gradient)
            new = [t for t in await self.chat(prompt, s.n, seed + k, "update") if t.strip()]
            if new:
                cache += list(zip(new, await self.score(query, new), strict=True))
        return max(score for _, score in cache)

    async def run_all(self, queries: list[str], concurrency: int, seed: int) -> list[float]:
        semaphore = asyncio.Semaphore(concurrency)

        async def bounded(query: str) -> float:
            async with semaphore:
                return await self.run(query, seed)

        return list(await asyncio.gather(*(bounded(q) for q in queries)))


class SamePromptChain(DirectChain):
    """The direct chain sending exactly the graph's requests: its prompt templates, seeds,
    delimiter extraction and de-duplicated scoring, with none of its machinery.

    Benchmark 2 compares the graph against this chain, so both sides generate the same
    text (seeded sampling) and the difference is orchestration alone.
    """

    async def run(self, query: str, seed: int) -> float:
        s = self.settings
        prompts = builtin_prompt_set(s.prompts)
        conversation = [{"role": "user", "content": query}]
        delimiters = prompts.delimiters(make_nonce(seed, conversation))
        turns = sample_messages(prompts, conversation)
        texts = await self.chat_messages(turns, s.n, seed, "sample")
        cache: dict[str, float] = {}  # text -> score, in the order first seen
        await self.score_new(query, [t for t in texts if t.strip()], cache)
        for k in range(1, s.d + 1):
            chosen = max(cache, key=cache.__getitem__)
            rejected = min(reversed(cache), key=cache.__getitem__)
            q = Quoted(query, chosen, None if rejected == chosen else rejected)
            turns = loss_messages(prompts, q)
            loss = (await self.chat_messages(turns, 1, seed, "loss"))[0].strip()
            q = replace(q, textual_loss=loss)
            turns = gradient_messages(prompts, q)
            gradient = (await self.chat_messages(turns, 1, seed, "gradient"))[0].strip()
            turns = update_messages(prompts, replace(q, textual_gradient=gradient), delimiters, s.n)
            outputs = await self.chat_messages(turns, s.n, seed + k, "update")
            extracted = [extract_response(text, delimiters)[0] for text in outputs]
            await self.score_new(query, [t for t in extracted if t is not None], cache)
        return max(cache.values())

    async def score_new(self, query: str, texts: list[str], cache: dict[str, float]) -> None:
        """Score the texts not in ``cache`` yet (one request) and add them."""
        fresh = list(dict.fromkeys(t for t in texts if t not in cache))
        if fresh:
            cache.update(zip(fresh, await self.score(query, fresh), strict=True))


async def warm_up(graph: Any, direct: DirectChain) -> None:
    """First requests (and the reward tokenizers) outside the timed runs."""
    await graph.ainvoke(
        {"query": WARMUP_PROMPT}, context={"max_tokens": 4, "num_samples": 2, "max_iterations": 1}
    )
    small = type(direct)(direct.servers, replace(direct.settings, max_tokens=4, n=2, d=1))
    try:
        await small.run(WARMUP_PROMPT, 0)
    finally:
        await small.aclose()
