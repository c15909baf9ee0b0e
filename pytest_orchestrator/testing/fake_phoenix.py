"""A loopback OTLP/HTTP receiver that, like an auth-enabled Phoenix, requires an API key.

It accepts ``POST /v1/traces`` (protobuf ``ExportTraceServiceRequest``) only with
``authorization: Bearer <key>`` and answers 401 otherwise, recording what it accepted and
the headers of every request. Never imported by runtime code.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from pytest_orchestrator.testing.loopback import serve


@dataclass
class FakePhoenix:
    key: str | None = "phx-test-key"
    """The API key required; None accepts anything (a collector without auth)."""
    accepted: list[ExportTraceServiceRequest] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    refused: int = 0
    url: str = ""

    def spans(self) -> list[Any]:
        return [
            span
            for request in self.accepted
            for resource in request.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]

    def resource_attributes(self) -> dict[str, str]:
        return {
            a.key: a.value.string_value
            for request in self.accepted
            for resource in request.resource_spans
            for a in resource.resource.attributes
        }

    @contextmanager
    def serve(self) -> Iterator[FakePhoenix]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                fake.headers.append(headers)
                if self.path != "/v1/traces":
                    self._reply(404)
                elif fake.key is not None and headers.get("authorization") != f"Bearer {fake.key}":
                    fake.refused += 1
                    self._reply(401)
                else:
                    request = ExportTraceServiceRequest()
                    request.ParseFromString(body)
                    fake.accepted.append(request)
                    self._reply(200)

            def _reply(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        with serve(Handler) as url:
            self.url = url
            yield self
