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

From a subprocess (e.g. an end-to-end ``pytest --orchestrate`` run)::

    python -m pytest_orchestrator.testing.fake_anthropic --script replies.json \\
        --port-file port.txt --log requests.jsonl
"""

from __future__ import annotations

import argparse
import itertools
import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from pytest_orchestrator.repo.files import atomic_write

__all__ = ["FakeAnthropic", "RecordedRequest", "Reply", "edit_reply", "plan_reply"]

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
    """One request as received: ``path``, ``headers`` (lower-case names), ``body`` (JSON)."""

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
    ) -> None:
        self.script: list[Reply] = list(script)
        """Replies not yet given; `push` adds more."""
        self.responder = responder
        """Called with the request body when the script is empty (dynamic replies)."""
        self.requests: list[RecordedRequest] = []
        self.log_file = log_file
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

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)
            if self.log_file is not None:
                with self.log_file.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(request) + "\n")

    def message(self, reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
        """The Messages API response body for a successful ``reply``."""
        content: list[dict[str, Any]] = []
        if "thinking" in reply:
            content.append(
                {"type": "thinking", "thinking": reply["thinking"], "signature": "fake-signature"}
            )
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
            "input_tokens": max(1, len(json.dumps(body)) // 4),
            "output_tokens": max(1, len(json.dumps(content)) // 4),
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


class _Handler(BaseHTTPRequestHandler):
    fake: FakeAnthropic
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean; the request log is the record

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length).decode("utf-8", "replace")
        try:
            body: dict[str, Any] = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            body = {}
        self.fake._record(
            RecordedRequest(
                path=self.path,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                raw=raw,
                time=time.time(),
            )
        )
        if not self.path.split("?")[0].endswith("/v1/messages"):
            self._send(
                404,
                {
                    "type": "error",
                    "error": {"type": "not_found_error", "message": f"no route {self.path}"},
                },
            )
            return
        reply = self.fake._next(body)
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
            self._send(status, {"type": "error", "error": error}, headers)
            return
        self._send(200, self.fake.message(reply, body), headers)

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
