"""A deterministic OpenAI-compatible policy and vLLM-style reward server, run as a subprocess.

Standard library only, so it starts in a fraction of a second and can be killed with
SIGKILL and restarted on the same port. It serves:

* ``POST /v1/chat/completions``: ``n`` choices whose text depends on the request's kind
  (sample, loss, gradient, update, or an LLM-judge request, from the ``X-TPO-Step``
  header the package sends) and on the prompt itself, never on chance;
* ``POST /classify``: one ``probs[0]`` per input, the input's word count divided by 10;
* ``GET /health`` and ``GET /v1/models``.

Behaviour comes from a JSON config file (``--config``), read at start and replaced by
``POST /_config`` (which also resets the fault counters):

* ``faults``: rules ``{"path": "chat"|"classify", "kind": ..., "skip": 0, "times": 1,
  "action": ..., ...}``; a rule applies to matching requests number ``skip+1`` to
  ``skip+times`` (``times`` null: all later ones). Actions: ``die`` (SIGKILL this process
  before answering), ``status`` (answer HTTP ``status``), ``delay`` (sleep ``seconds``,
  then answer), ``nan``/``inf``/``null`` (that score of a classify answer), ``short`` (one
  classify result fewer than inputs);
* ``max_prompt_chars``: chat prompts longer than this get vLLM's HTTP 400 context error;
* ``api_key``: required bearer token (HTTP 401 otherwise, echoing the token when
  ``echo_key`` is set, as some servers do);
* ``outputs``: ``{kind: [texts]}`` replacing the generated texts of that kind (cycled);
  ``{START}`` and ``{END}`` in them become the request's update delimiters.

Every request is appended to ``--log`` as one JSON line (path, kind, n, prompt size, whether
the bearer token matched, the fault applied) before it is answered, so a test can count
what reached the server across restarts.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# The client says which TPO step (or the LLM judge) sent a request in this header
# (langgraph_tpo.policy.STEP_HEADER), so the stub works with any prompt set's wording.
STEP_HEADER = "X-TPO-Step"
KINDS = {"textual_loss": "loss", "textual_gradient": "gradient"}
JUDGE_MARKER = "[Response]"  # langgraph_tpo.prompts.judge: where the judged response starts
# The update delimiters of the built-in prompt sets: the tag name carries the run's nonce.
DELIMITER = re.compile(r"<(improved_response_\w+)>")
PLAIN = ("<improved_response>", "</improved_response>")
WORD = "good"


def request_kind(step: str | None) -> str:
    """The kind of a chat request from its step header: sample, loss, gradient, update, judge."""
    step = step or "sample"
    return KINDS.get(step, step)


def delimiters(messages: list[dict[str, Any]]) -> tuple[str, str]:
    """The update delimiters the request asks for (the last ones named in its last turn)."""
    last = str(messages[-1].get("content", "")) if messages else ""
    names = DELIMITER.findall(last)
    return (f"<{names[-1]}>", f"</{names[-1]}>") if names else PLAIN


def _number(*parts: Any) -> int:
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big")


def _answer(words: int) -> str:
    # numbered, so a long answer is not a loop (langgraph_tpo.degeneration) but still
    # counts its words: "answer: good1 good2 good3"
    return "answer:" + "".join(f" {WORD}{i}" for i in range(1, max(1, words) + 1))


def generate(kind: str, prompt: str, index: int, seed: Any, tags: tuple[str, str] = PLAIN) -> str:
    """The deterministic text of choice ``index``: updates write a longer answer than
    the longest one quoted in the prompt (the chosen response), so TPO improves."""
    if kind == "sample":
        return _answer(3 + _number(prompt, index, seed) % 12)
    if kind == "update":
        quoted = [len(part.split()) for part in prompt.split("answer:")[1:]]
        best = max(quoted, default=1)
        return f"{tags[0]}{_answer(best + 1 + _number(prompt, index) % 4)}{tags[1]}"
    if kind == "judge":  # a rating from 1 to 10 that grows with the judged answer's length
        response = prompt.rsplit(JUDGE_MARKER, 1)[-1]
        return str(min(10, 1 + response.count(WORD) // 3))
    return f"{kind}: make it longer"


def _last(messages: list[dict[str, Any]]) -> str:
    return str(messages[-1].get("content", "")) if messages else ""


def _fill(text: str, tags: tuple[str, str]) -> str:
    """A configured output with ``{START}``/``{END}`` replaced by the request's delimiters."""
    return text.replace("{START}", tags[0]).replace("{END}", tags[1])


class Stub:
    """The server's behaviour and its per-rule request counters."""

    def __init__(self, config: dict[str, Any], log_path: str) -> None:
        self.log_path = log_path
        self.lock = threading.Lock()
        self.configure(config)

    def configure(self, config: dict[str, Any]) -> None:
        """Replace the behaviour and reset the fault counters."""
        with self.lock:
            self.config = config
            self.hits = [0] * len(config.get("faults", []))

    def fault(self, path: str, kind: str | None) -> dict[str, Any] | None:
        """The fault rule that applies to this request, counting it against each rule."""
        chosen = None
        with self.lock:
            for number, rule in enumerate(self.config.get("faults", [])):
                if rule.get("path", path) != path or rule.get("kind", kind) != kind:
                    continue
                self.hits[number] += 1
                skip, times = int(rule.get("skip", 0)), rule.get("times", 1)
                hit = self.hits[number]
                if chosen is None and hit > skip and (times is None or hit <= skip + times):
                    chosen = rule
        return chosen

    def log(self, record: dict[str, Any]) -> None:
        line = (json.dumps({"t": time.time(), "pid": os.getpid(), **record}) + "\n").encode()
        fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


class Handler(BaseHTTPRequestHandler):
    """Routes requests to the stub's endpoints."""

    server_version = "tpo-stub/1"
    protocol_version = "HTTP/1.1"
    stub: Stub

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        """Silence the default access log on stderr."""

    def _send(self, status: int, body: Any) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # client gave up
            self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path == "/health":
            self._send(200, b"")
        elif self.path == "/v1/models":
            # no window of its own: context errors come from ``max_prompt_chars`` scripts
            models = [{"id": "stub", "object": "model", "max_model_len": 1_000_000}]
            self._send(200, {"object": "list", "data": models})
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if self.path == "/_config":
            self.stub.configure(body)
            self._send(200, {"ok": True})
        elif self.path == "/v1/chat/completions":
            self._chat(body)
        elif self.path == "/classify":
            self._classify(body)
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    def _authorized(self) -> tuple[bool, str]:
        want = self.stub.config.get("api_key")
        got = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        return (not want or got == want), got

    def _refuse(self, got: str) -> None:
        shown = got if self.stub.config.get("echo_key") else "(hidden)"
        error = {"message": f"Incorrect API key provided: {shown}", "type": "AuthenticationError"}
        self._send(401, {"error": error})

    def _apply(self, rule: dict[str, Any] | None) -> bool:
        """Apply a die/status/delay fault; True when the request has been answered."""
        action = (rule or {}).get("action")
        if action == "die":
            os.kill(os.getpid(), signal.SIGKILL)
        if action == "delay":
            time.sleep(float(rule.get("seconds", 1.0)))  # type: ignore[union-attr]
        if action == "status":
            status = int(rule.get("status", 503))  # type: ignore[union-attr]
            error = {"message": f"stub fault: HTTP {status}", "type": "ServerError"}
            self._send(status, {"error": error, "code": status})
            return True
        return False

    def _chat(self, body: dict[str, Any]) -> None:
        messages = body.get("messages") or []
        kind = request_kind(self.headers.get(STEP_HEADER))
        tags = delimiters(messages) if kind == "update" else PLAIN
        n = int(body.get("n") or 1)
        prompt = "\n".join(str(m.get("content", "")) for m in messages)
        ok, got = self._authorized()
        rule = self.stub.fault("chat", kind) if ok else None
        limit = int(self.stub.config.get("max_prompt_chars") or 0)  # 0: no limit
        too_long = 0 < limit < len(prompt)
        self.stub.log(
            {
                "path": "chat",
                "kind": kind,
                "n": n,
                "chars": len(prompt),
                "auth": ok,
                "fault": (rule or {}).get("action") or ("context" if too_long else None),
                "query": _last(messages)[:120] if kind == "sample" else None,
                "prompt": prompt if self.stub.config.get("log_prompts") else None,
            }
        )
        if not ok:
            self._refuse(got)
            return
        if self._apply(rule):
            return
        if too_long:
            message = (
                f"This model's maximum context length is {limit // 4} tokens. However, your "
                f"prompt contains {len(prompt)} characters. Please reduce the length of the "
                "input prompt."
            )
            error = {"message": message, "type": "BadRequestError", "code": 400}
            self._send(400, {"error": error})
            return
        fixed = (self.stub.config.get("outputs") or {}).get(kind)
        texts = [
            _fill(fixed[i % len(fixed)], tags)
            if fixed
            else generate(kind, prompt, i, body.get("seed"), tags)
            for i in range(n)
        ]
        choices = [
            {
                "index": i,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
                "logprobs": None,
            }
            for i, text in enumerate(texts)
        ]
        tokens = len(prompt.split())
        completion = sum(len(t.split()) for t in texts)
        usage = {
            "prompt_tokens": tokens,
            "completion_tokens": completion,
            "total_tokens": tokens + completion,
        }
        self._send(
            200,
            {
                "id": f"chatcmpl-{_number(prompt, n)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "stub"),
                "choices": choices,
                "usage": usage,
            },
        )

    def _classify(self, body: dict[str, Any]) -> None:
        inputs = body.get("input") or []
        inputs = [inputs] if isinstance(inputs, str) else list(inputs)
        ok, got = self._authorized()
        rule = self.stub.fault("classify", None) if ok else None
        action = (rule or {}).get("action")
        self.stub.log(
            {"path": "classify", "kind": None, "n": len(inputs), "auth": ok, "fault": action}
        )
        if not ok:
            self._refuse(got)
            return
        if self._apply(rule):
            return
        scores: list[Any] = [len(str(text).split()) / 10 for text in inputs]
        if action in ("nan", "inf", "null") and scores:
            index = int(rule.get("index", len(scores) - 1)) % len(scores)  # type: ignore[union-attr]
            scores[index] = {"nan": float("nan"), "inf": float("inf"), "null": None}[action]
        if action == "short":
            scores = scores[:-1]
        data = [
            {"index": i, "label": "LABEL_0", "probs": [score], "num_classes": 1}
            for i, score in enumerate(scores)
        ]
        self._send(200, {"id": "classify-stub", "object": "list", "data": data})


def main() -> None:
    """Serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    with open(args.config, encoding="utf-8") as handle:
        config = json.load(handle)
    Handler.stub = Stub(config, args.log)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    server.serve_forever()


if __name__ == "__main__":
    main()
