"""A local stand-in for the Anthropic Messages API, for tests that must not touch the network.

`FakeAnthropic` is a real HTTP server on 127.0.0.1 that speaks ``POST /v1/messages``. The
official ``anthropic`` SDK talks to it unchanged (``base_url=fake.url`` or
``ANTHROPIC_BASE_URL``), so the code under test takes its production path: the SDK builds
the request, sends it over a socket, parses the response, raises its own exceptions.

Each request consumes the next *reply* of a script; every request is recorded (path, headers,
JSON body), so a test can assert budgets, retries and redaction on the wire. A reply is a
JSON-able dict:

``{"tool_use": {"name": "submit_plan", "input": {...}}}``
    an assistant message calling a tool (``stop_reason`` ``tool_use``)
``{"text": "..."}``
    a plain answer (``end_turn``); ``text`` may also accompany ``tool_use``
``{"stop_reason": "max_tokens", ...}``
    any stop reason may be forced; ``usage`` may be given, else it is estimated
``{"thinking": "..."}``
    prepends a thinking block (with a signature, as the API sends)
``{"status": 529, "error": {"type": "overloaded_error", "message": "..."}, "headers": {...}}``
    an API error; ``headers`` such as ``retry-after`` are sent as given
``{"delay": 2.0, ...}``
    wait before answering (to trigger a client timeout)
``{"disconnect": true}``
    close the connection without answering (a connection error)
``{"body": "<html>...", "content_type": "text/html", "status": 200}``
    exactly these bytes, as a misbehaving proxy would answer: truncated JSON, an HTML page,
    JSON that is not a Message (``content_type`` defaults to ``application/json``)

When the script runs out the server answers 400 ``invalid_request_error`` "script
exhausted", which the SDK does not retry, so a test fails loudly instead of hanging.

**Strict like the real service.** Before a request consumes a reply it is checked against
what the API accepts, and refused with the API's own error body (``{"type": "error",
"error": {"type": "invalid_request_error", "message": ...}, "request_id": ...}``) — without
consuming the script — for: an unknown model id (404 ``not_found_error``); ``max_tokens``
above the model's limit; the wrong thinking form for the model (`models.ModelSpec`);
``budget_tokens`` < 1024 or ≥ ``max_tokens``; thinking together with a forced
``tool_choice``, or forced tool use on a model that refuses it; a ``tool_choice`` naming no
offered tool; ``tool_use`` blocks without their ``tool_result`` right after (or results
without their call); a thinking block it did not issue or whose text was changed (each
carries an HMAC signature of its text); a missing API key or bearer token (401).

**Token counting.** ``POST /v1/messages/count_tokens`` answers ``{"input_tokens": N}`` with
the stand-in's own deterministic count (`count_tokens`: a word-piece count of every text
sent, the tool-use system prompt included), the same count a reply's ``usage`` reports;
``counting=False`` makes it 404 like a route without counting. Count requests are kept in
``counts``, apart from ``requests``.

**Prompt caching.** A request whose system block carries ``cache_control`` writes its prefix
(tools and system) to the stand-in's cache on first sight (``cache_creation_input_tokens``)
and reads it afterwards (``cache_read_input_tokens``); ``input_tokens`` is what remains, as
the API reports it. Prefixes under 1024 tokens are not cached (the API's minimum).

**Routes.** The same server speaks Amazon Bedrock's request shape (``POST
/model/{id}/invoke``, the model in the path, ``anthropic_version`` in the body and no
``model``, a SigV4 ``Authorization``) and Google Vertex AI's (``POST .../publishers/
anthropic/models/{id}:rawPredict`` and ``count-tokens:rawPredict`` under
``/v1/projects/{p}/locations/{r}``, a bearer token), and serves ``POST /token`` as an OAuth
token endpoint for Google credentials, so the SDK's `AnthropicBedrock` and
`AnthropicVertex` clients can be pointed at it (``ANTHROPIC_BEDROCK_BASE_URL``,
``ANTHROPIC_VERTEX_BASE_URL``). Each recorded request says its ``route``.

From a subprocess (e.g. an end-to-end ``pytest --orchestrate`` run)::

    python -m pytest_orchestrator.testing.fake_anthropic --script replies.json \\
        --port-file port.txt --log requests.jsonl
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import itertools
import json
import re
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from pytest_orchestrator.phases.plan.llm import TOOL_USE_SYSTEM_TOKENS
from pytest_orchestrator.phases.plan.models import MODELS, ModelSpec, base_id
from pytest_orchestrator.repo.files import atomic_write

__all__ = [
    "FakeAnthropic",
    "RecordedRequest",
    "Reply",
    "count_tokens",
    "edit_reply",
    "plan_reply",
    "request_texts",
]

Reply = dict[str, Any]
"""One scripted reply (see the module docstring)."""

_ERROR_TYPES: Final = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def plan_reply(steps: list[dict[str, Any]], summary: str = "", **plan: Any) -> Reply:
    """A reply calling ``submit_plan`` with these steps (and any other plan.json fields)."""
    return {
        "tool_use": {"name": "submit_plan", "input": {"summary": summary, "steps": steps, **plan}}
    }


def edit_reply(*edits: dict[str, str], **reply: Any) -> Reply:
    """A reply calling ``submit_edits`` with these ``{search|symbol, replace}`` edits."""
    return {"tool_use": {"name": "submit_edits", "input": {"edits": list(edits)}}, **reply}


class RecordedRequest(dict[str, Any]):
    """One request as received: ``path``, ``route`` (``api``, ``bedrock``, ``vertex``),
    ``model``, ``headers`` (lower-case names), ``body`` (JSON)."""

    @property
    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = self["body"]
        return body

    @property
    def raw(self) -> str:
        """The body exactly as it came over the wire."""
        raw: str = self["raw"]
        return raw


class FakeAnthropic:
    """A scripted ``/v1/messages`` server; use as a context manager, or `start`/`stop`."""

    def __init__(
        self,
        script: Iterable[Reply] = (),
        *,
        responder: Callable[[dict[str, Any]], Reply] | None = None,
        log_file: Path | None = None,
        counting: bool = True,
    ) -> None:
        self.script: list[Reply] = list(script)
        """Replies not yet given; `push` adds more."""
        self.responder = responder
        """Called with the request body when the script is empty (dynamic replies)."""
        self.requests: list[RecordedRequest] = []
        """Message requests (valid or refused), in order."""
        self.counts: list[RecordedRequest] = []
        """``count_tokens`` requests."""
        self.count_script: list[Reply] = []
        """Replies for ``count_tokens`` requests before the stand-in's own count: a
        ``status`` (an API error) or a raw ``body``, like a message reply."""
        self.counting = counting
        self.log_file = log_file
        self._key = secrets.token_bytes(32)
        self._cache: set[str] = set()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -------------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake server is not running: call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def start(self, port: int = 0) -> FakeAnthropic:
        handler = type("Handler", (_Handler,), {"fake": self})
        server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        server.daemon_threads = True
        server.block_on_close = False  # a delayed reply must not hold up stop()
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-anthropic"
        )
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -------------------------------------------------------------------- script

    def push(self, *replies: Reply) -> None:
        with self._lock:
            self.script.extend(replies)

    def _next(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            if self.script:
                return self.script.pop(0)
        if self.responder is not None:
            return self.responder(body)
        return {"status": 400, "error": {"message": "fake anthropic: script exhausted"}}

    def _record(self, request: RecordedRequest, *, counting: bool = False) -> None:
        with self._lock:
            (self.counts if counting else self.requests).append(request)
            if self.log_file is not None:
                with self.log_file.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(request) + "\n")

    def sign(self, text: str) -> str:
        """The signature this stand-in gives a thinking block with this text."""
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    def message(self, reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
        """The Messages API response body for a successful ``reply``."""
        content: list[dict[str, Any]] = []
        if "thinking" in reply:
            text = str(reply["thinking"])
            content.append({"type": "thinking", "thinking": text, "signature": self.sign(text)})
        if "redacted_thinking" in reply:
            data = str(reply["redacted_thinking"])
            content.append({"type": "redacted_thinking", "data": f"{data}.{self.sign(data)}"})
        if "text" in reply:
            content.append({"type": "text", "text": reply["text"]})
        stop_reason = "end_turn"
        uses = reply.get("tool_use")
        for use in [uses] if isinstance(uses, dict) else list(uses or []):
            content.append(
                {
                    "type": "tool_use",
                    "id": f"toolu_{next(self._ids):06d}",
                    "name": use["name"],
                    "input": use.get("input", {}),
                }
            )
            stop_reason = "tool_use"
        usage = reply.get("usage") or {
            **self._input_usage(body),
            "output_tokens": max(1, count_tokens({"messages": [{"content": content}]})),
        }
        return {
            "id": f"msg_{next(self._ids):06d}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", "fake-model"),
            "content": content,
            "stop_reason": reply.get("stop_reason", stop_reason),
            "stop_sequence": None,
            "usage": usage,
        }

    def _input_usage(self, body: dict[str, Any]) -> dict[str, int]:
        total = count_tokens(body)
        system = body.get("system")
        cached = isinstance(system, list) and any(
            isinstance(b, dict) and b.get("cache_control") for b in system
        )
        prefix = count_tokens({"system": system, "tools": body.get("tools")})
        usage = {"input_tokens": total, "cache_read_input_tokens": 0}
        usage["cache_creation_input_tokens"] = 0
        if not cached or prefix < MIN_CACHEABLE_TOKENS:
            return usage
        key = hashlib.sha256(
            json.dumps([body.get("model"), system, body.get("tools")], sort_keys=True).encode()
        ).hexdigest()
        with self._lock:
            hit = key in self._cache
            self._cache.add(key)
        usage["input_tokens"] = total - prefix
        usage["cache_read_input_tokens" if hit else "cache_creation_input_tokens"] = prefix
        return usage

    # -------------------------------------------------------------------- strictness

    def check(
        self, body: dict[str, Any], model: str, *, counting: bool = False
    ) -> tuple[int, str, str] | None:
        """``(status, error type, message)`` when the real API would refuse ``body``
        (``counting``: a ``count_tokens`` request, which has no ``max_tokens``)."""
        spec = MODELS.get(base_id(model))
        if spec is None:
            return 404, "not_found_error", f"model: {model}"
        for problem in (
            None if counting else _check_max_tokens(body, spec, model),
            _check_thinking(body, spec, counting=counting),
            _check_tool_choice(body, spec),
            _check_effort(body, spec),
            _check_pairs(body.get("messages") or []),
            self._check_signatures(body.get("messages") or []),
        ):
            if problem:
                return 400, "invalid_request_error", problem
        return None

    def _check_signatures(self, messages: list[Any]) -> str | None:
        for i, message in enumerate(messages):
            content = message.get("content") if isinstance(message, dict) else None
            for j, block in enumerate(content if isinstance(content, list) else []):
                kind = block.get("type") if isinstance(block, dict) else None
                where = f"messages.{i}.content.{j}"
                if kind == "thinking":
                    given = str(block.get("signature", ""))
                    if not hmac.compare_digest(given, self.sign(str(block.get("thinking", "")))):
                        return f"{where}: Invalid `signature` in `thinking` block"
                elif kind == "redacted_thinking":
                    data, _, mac = str(block.get("data", "")).rpartition(".")
                    if not hmac.compare_digest(mac, self.sign(data)):
                        return f"{where}: Invalid `data` in `redacted_thinking` block"
        return None


MIN_CACHEABLE_TOKENS: Final = 1024
_PIECES: Final = re.compile(r" ?[A-Za-z]{1,10}| ?\d{1,3}|\s+(?!\S)|\s|[^\sA-Za-z\d]{1,3}")


def request_texts(value: Any) -> Iterable[str]:
    """Every string of a request part (keys of schemas included: they are sent too)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if key in ("type", "cache_control", "signature", "id", "tool_use_id"):
                continue
            if key in ("input", "input_schema", "properties"):
                yield json.dumps(item)
            else:
                yield from request_texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from request_texts(item)


def count_tokens(body: dict[str, Any]) -> int:
    """The stand-in's token count of a request: word pieces of every text it carries, four
    per message for framing, and the tool-use system prompt when tools are offered.

    Deterministic, and of the same order as Claude's tokenizer, without claiming to be it.
    """
    pieces = sum(len(_PIECES.findall(text)) for text in request_texts(body.get("system")))
    pieces += sum(len(_PIECES.findall(text)) for text in request_texts(body.get("tools")))
    messages = body.get("messages") or []
    for message in messages:
        pieces += 4 + sum(len(_PIECES.findall(t)) for t in request_texts(message.get("content")))
    return pieces + (TOOL_USE_SYSTEM_TOKENS if body.get("tools") else 0)


def _check_max_tokens(body: dict[str, Any], spec: ModelSpec, model: str) -> str | None:
    value = body.get("max_tokens")
    if not isinstance(value, int) or value < 1:
        return "max_tokens: Field required"
    if value > spec.max_output:
        return (
            f"max_tokens: {value} > {spec.max_output}, which is the maximum allowed number of "
            f"output tokens for {model}"
        )
    return None


def _check_thinking(body: dict[str, Any], spec: ModelSpec, *, counting: bool) -> str | None:
    thinking = body.get("thinking")
    if thinking is None:
        return None
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    advice = 'Use "thinking.type.adaptive" and "output_config.effort" to control thinking behavior.'
    if kind == "enabled":
        if spec.thinking == "adaptive" and not spec.accepts_enabled:
            return f'"thinking.type.enabled" is not supported for this model. {advice}'
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or budget < 1024:
            return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
        if not counting and budget >= int(body.get("max_tokens", 0)):
            return "`max_tokens` must be greater than `thinking.budget_tokens`"
        return None
    if kind == "adaptive":
        if spec.thinking != "adaptive":
            return '"thinking.type.adaptive" is not supported for this model.'
        return None
    if kind == "disabled":
        if not spec.can_disable:
            return f'"thinking.type.disabled" is not supported for this model. {advice}'
        return None
    return f"thinking.type: Input tag {kind!r} found using 'type' does not match any expected tags"


def _thinks(body: dict[str, Any], spec: ModelSpec) -> bool:
    thinking = body.get("thinking")
    if isinstance(thinking, dict):
        return thinking.get("type") in ("enabled", "adaptive")
    return spec.thinking_default


def _check_tool_choice(body: dict[str, Any], spec: ModelSpec) -> str | None:
    choice = body.get("tool_choice")
    if not isinstance(choice, dict):
        return None
    names = {t.get("name") for t in body.get("tools") or [] if isinstance(t, dict)}
    if choice.get("type") == "tool" and choice.get("name") not in names:
        return f"tool_choice.name: no tool named {choice.get('name')!r} in tools"
    if choice.get("type") in ("any", "tool"):
        if not spec.forced_tool_use:
            return "tool_choice: forced tool use is not supported for this model; use 'auto'"
        if _thinks(body, spec):
            return "Thinking may not be enabled when tool_choice forces tool use."
    return None


def _check_effort(body: dict[str, Any], spec: ModelSpec) -> str | None:
    config = body.get("output_config")
    effort = config.get("effort") if isinstance(config, dict) else None
    if effort is None:
        return None
    if not spec.effort:
        return "output_config.effort: effort is not supported for this model"
    if effort not in ("low", "medium", "high", "xhigh", "max"):
        return "output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'"
    return None


def _check_pairs(messages: list[Any]) -> str | None:
    """Every ``tool_use`` answered by a ``tool_result`` at the start of the next user turn."""
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            return f"messages.{i}: Input should be an object"
        content = message.get("content")
        blocks = content if isinstance(content, list) else []
        results = [b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"]
        previous = messages[i - 1] if i else {}
        before = previous.get("content") if isinstance(previous, dict) else None
        uses = [
            b.get("id")
            for b in (before if isinstance(before, list) else [])
            if previous.get("role") == "assistant" and b.get("type") == "tool_use"
        ]
        if message.get("role") == "user" and results and not set(results) <= set(uses):
            stray = sorted(set(results) - set(uses))
            return (
                f"messages.{i}.content.0: unexpected `tool_use_id` found in `tool_result` "
                f"blocks: {', '.join(map(str, stray))}. Each `tool_result` block must have a "
                "corresponding `tool_use` block in the previous message."
            )
        if uses and (message.get("role") != "user" or set(uses) - set(results)):
            missing = sorted(set(uses) - set(results))
            return (
                f"messages.{i}: `tool_use` ids were found without `tool_result` blocks "
                f"immediately after: {', '.join(map(str, missing))}. Each `tool_use` block must "
                "have a corresponding `tool_result` block in the next message."
            )
    last = messages[-1] if messages else {}
    content = last.get("content") if isinstance(last, dict) else None
    if (
        last.get("role") == "assistant"
        and isinstance(content, list)
        and any(b.get("type") == "tool_use" for b in content)
    ):
        return (
            f"messages.{len(messages) - 1}: `tool_use` ids were found without `tool_result` "
            "blocks immediately after"
        )
    return None


class _Handler(BaseHTTPRequestHandler):
    fake: FakeAnthropic
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean; the request log is the record

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length).decode("utf-8", "replace")
        path = self.path.split("?")[0]
        if path == "/token":  # Google's OAuth token endpoint, for Vertex credentials
            self._send(200, {"access_token": "fake-google-token", "expires_in": 3600})
            return
        try:
            body: dict[str, Any] = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            body = {}
        headers = {k.lower(): v for k, v in self.headers.items()}
        route, model, counting = _route(path, body)
        request = RecordedRequest(
            path=self.path,
            route=route,
            model=model,
            headers=headers,
            body=body,
            raw=raw,
            time=time.time(),
        )
        self.fake._record(request, counting=counting)
        if route is None:
            self._error(404, "not_found_error", f"no route {self.path}")
            return
        unauthenticated = _authentication(route, headers, body)
        if unauthenticated:
            self._error(401, "authentication_error", unauthenticated)
            return
        refused = self.fake.check(body, model, counting=counting)
        if refused is not None:
            self._error(*refused)
            return
        if counting:
            with self.fake._lock:
                scripted = self.fake.count_script.pop(0) if self.fake.count_script else None
            if scripted is not None:
                self._scripted(scripted, {"input_tokens": count_tokens(body)})
                return
            if not self.fake.counting:
                self._error(404, "not_found_error", "token counting is not available here")
                return
            self._send(200, {"input_tokens": count_tokens(body)})
            return
        self._answer(body)

    def _answer(self, body: dict[str, Any]) -> None:
        reply = self.fake._next(body)
        self._scripted(reply, None, body)

    def _scripted(
        self, reply: Reply, payload: dict[str, Any] | None, body: dict[str, Any] | None = None
    ) -> None:
        """Answer ``reply``: a fault, a raw body, an error status, or ``payload`` (else the
        message for ``body``)."""
        if reply.get("delay"):
            time.sleep(float(reply["delay"]))
        if reply.get("disconnect"):
            self.close_connection = True
            return
        status = int(reply.get("status", 200))
        headers = {str(k): str(v) for k, v in (reply.get("headers") or {}).items()}
        if "body" in reply:
            content_type = str(reply.get("content_type", "application/json"))
            self._send_raw(status, str(reply["body"]).encode(), {"content-type": content_type})
            return
        if status >= 400:
            error = {"type": _ERROR_TYPES.get(status, "api_error"), "message": "scripted error"}
            error.update(reply.get("error") or {})
            self._error(status, error["type"], error["message"], headers)
            return
        if payload is None:
            payload = self.fake.message(reply, body or {})
        self._send(200, payload, headers)

    def _error(
        self, status: int, kind: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        payload = {
            "type": "error",
            "error": {"type": kind, "message": message},
            "request_id": f"req_fake_{status}",
        }
        self._send(status, payload, headers)

    def _send(
        self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        self._send_raw(status, json.dumps(payload).encode(), headers)

    def _send_raw(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
        headers = {"content-type": "application/json", **(headers or {})}
        try:
            self.send_response(status)
            self.send_header("content-length", str(len(data)))
            self.send_header("request-id", f"req_fake_{status}")
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test): nothing to do


_VERTEX: Final = re.compile(
    r"^/v1/projects/[^/]+/locations/[^/]+/publishers/anthropic/models/(?P<model>[^/:]+)"
    r":(?P<verb>rawPredict|streamRawPredict)$"
)
_BEDROCK: Final = re.compile(r"^/model/(?P<model>[^/]+)/invoke$")


def _route(path: str, body: dict[str, Any]) -> tuple[str | None, str, bool]:
    """``(route, model id, is a count)`` of a request path; route None when unknown."""
    from urllib.parse import unquote

    if path in ("/v1/messages", "/v1/messages/count_tokens"):
        return "api", str(body.get("model", "")), path.endswith("count_tokens")
    found = _BEDROCK.match(path)
    if found:
        return "bedrock", unquote(found.group("model")), False
    found = _VERTEX.match(path)
    if found:
        counting = found.group("model") == "count-tokens"
        model = str(body.get("model", "")) if counting else unquote(found.group("model"))
        return "vertex", model, counting
    return None, "", False


def _authentication(route: str, headers: dict[str, str], body: dict[str, Any]) -> str:
    """Why a request would be refused 401, or "" (shapes are checked, not the secrets)."""
    auth = headers.get("authorization", "")
    if route == "api":
        if headers.get("x-api-key") or auth.startswith("Bearer "):
            return ""
        return "x-api-key header is required"
    if not body.get("anthropic_version") or ("model" in body and route == "bedrock"):
        return f"the {route} request shape is wrong: the body needs anthropic_version, no model"
    if route == "bedrock" and not auth.startswith("AWS4-HMAC-SHA256 Credential="):
        return "missing SigV4 Authorization"
    if route == "vertex" and not auth.startswith("Bearer "):
        return "missing bearer token"
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_orchestrator.testing.fake_anthropic")
    parser.add_argument("--script", type=Path, help="JSON list of replies")
    parser.add_argument("--port-file", type=Path, required=True, help="write the port here")
    parser.add_argument("--log", type=Path, help="append every request here as JSON lines")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    script = json.loads(args.script.read_text(encoding="utf-8")) if args.script else []
    fake = FakeAnthropic(script, log_file=args.log).start(args.port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    atomic_write(args.port_file, str(fake.port))  # a reader never sees a half-written port
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
