"""OpenTelemetry spans for every phase, step, attempt, test run and model call.

Each run gets its own `TracerProvider` (never the global one: several runs may share a
process, e.g. under pytester). Spans always go to ``trace.json`` in the run directory and,
when an endpoint is configured, over OTLP/HTTP to a collector such as Phoenix:
``PHOENIX_COLLECTOR_ENDPOINT`` (a base URL) or the standard ``OTEL_EXPORTER_OTLP_*``
variables. Attribute names follow OpenInference where one exists.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import Span, Status, StatusCode

from pytest_orchestrator.repo.files import atomic_write

# OpenInference span kinds (openinference-semantic-conventions), spelled out to avoid a dependency.
SPAN_KIND: Final = "openinference.span.kind"
CHAIN: Final = "CHAIN"
TOOL: Final = "TOOL"
LLM: Final = "LLM"
AGENT: Final = "AGENT"
INPUT_VALUE: Final = "input.value"
OUTPUT_VALUE: Final = "output.value"


class JsonFileExporter(SpanExporter):
    """Writes finished spans to one JSON file, rewritten whole on every export (small runs)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._spans: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._lock:
            self._spans.extend(_to_dict(s) for s in spans)
            atomic_write(self.path, json.dumps({"spans": self._spans}, indent=1))
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def _to_dict(span: ReadableSpan) -> dict[str, Any]:
    ctx = span.get_span_context()
    assert ctx is not None
    return {
        "name": span.name,
        "trace_id": f"{ctx.trace_id:032x}",
        "span_id": f"{ctx.span_id:016x}",
        "parent_id": f"{span.parent.span_id:016x}" if span.parent else None,
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "status": span.status.status_code.name,
        "attributes": dict(span.attributes or {}),
    }


def otlp_endpoint() -> tuple[str, str] | None:
    """``(traces endpoint, UI base)`` from the environment, or None when nothing is configured."""
    phoenix = os.environ.get("PHOENIX_COLLECTOR_ENDPOINT", "").rstrip("/")
    if phoenix:
        base = phoenix.removesuffix("/v1/traces")
        return f"{base}/v1/traces", base
    traces = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").rstrip("/")
    if traces:
        return traces, traces.removesuffix("/v1/traces")
    generic = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").rstrip("/")
    if generic:
        return f"{generic}/v1/traces", generic
    return None


class Tracer:
    """The run's tracer: `span` opens a child of the current span."""

    def __init__(self, trace_file: Path, *, service: str = "pytest-orchestrator") -> None:
        self.trace_file = trace_file
        self.provider = TracerProvider(resource=Resource.create({"service.name": service}))
        self.provider.add_span_processor(SimpleSpanProcessor(JsonFileExporter(trace_file)))
        self.endpoint = otlp_endpoint()
        if self.endpoint is not None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter(endpoint=self.endpoint[0], timeout=5)
            self.provider.add_span_processor(BatchSpanProcessor(exporter))
        self._tracer = self.provider.get_tracer("pytest_orchestrator")
        self.trace_id: str | None = None

    @contextmanager
    def span(self, name: str, kind: str = CHAIN, **attributes: Any) -> Iterator[Span]:
        attrs = {SPAN_KIND: kind, **{k: _attr(v) for k, v in attributes.items()}}
        with self._tracer.start_as_current_span(name, attributes=attrs) as span:
            if self.trace_id is None:
                self.trace_id = f"{span.get_span_context().trace_id:032x}"
            try:
                yield span
            except BaseException as exc:
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
                raise

    def link(self) -> str:
        """Where a reviewer finds the trace: the Phoenix page, else the local file."""
        if self.endpoint is not None and self.trace_id:
            return f"{self.endpoint[1]}/redirects/traces/{self.trace_id}"
        return str(self.trace_file)

    def shutdown(self) -> None:
        self.provider.force_flush(timeout_millis=5000)
        self.provider.shutdown()


def _attr(value: Any) -> Any:
    if isinstance(value, str | bool | int | float):
        return value
    return json.dumps(value, default=str)[:4000]
