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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
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


# ---------------------------------------------------------------------------- error spans
# The Review phase's trace check reads these (`Tracer.error_spans`, `Tracer.export_failures`);
# which of them gate an attempt is decided in one place, `phases/review/trace_errors.py`.


@dataclass(frozen=True)
class ErrorSpan:
    """A span that ended in error status: its name, its message and its ancestors' names
    (nearest first), so a reader can tell an attempt's own work from what surrounds it."""

    name: str
    message: str
    ancestors: tuple[str, ...]


class _ErrorLog(SpanProcessor):
    """Remembers every span's parent and name (ids and names only: small) and every span
    that ended in error, in memory, for `Tracer.error_spans`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._parent: dict[int, int | None] = {}
        self._name: dict[int, str] = {}
        self._errors: list[tuple[int, str]] = []

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        ctx, parent = span.get_span_context(), span.parent
        with self._lock:
            self._parent[ctx.span_id] = parent.span_id if parent is not None else None
            self._name[ctx.span_id] = span.name

    def on_end(self, span: ReadableSpan) -> None:
        if span.status.status_code is StatusCode.ERROR:
            ctx = span.get_span_context()
            assert ctx is not None
            with self._lock:
                self._errors.append((ctx.span_id, span.status.description or ""))

    def errors_under(self, name: str) -> list[ErrorSpan]:
        with self._lock:
            roots = [sid for sid, n in self._name.items() if n == name]
            if not roots:
                return []
            root, found = roots[-1], []  # the latest span of that name
            for sid, message in self._errors:
                chain: list[str] = []
                cur: int | None = sid
                while cur is not None and cur != root:
                    cur = self._parent.get(cur)
                    if cur is not None:
                        chain.append(self._name.get(cur, "?"))
                if cur == root:
                    found.append(ErrorSpan(self._name[sid], message, tuple(chain)))
            return found


class _WatchedExporter(SpanExporter):
    """Passes spans on to ``inner`` and notes each export that fails (a collector that is
    down or refuses us), for `Tracer.export_failures`."""

    def __init__(self, inner: SpanExporter, failures: list[str]) -> None:
        self.inner, self.failures = inner, failures

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self.inner.export(spans)
        except Exception as exc:
            self.failures.append(f"{type(exc).__name__}: {exc}")
            return SpanExportResult.FAILURE
        if result is not SpanExportResult.SUCCESS:
            self.failures.append(f"{len(spans)} span(s) not accepted by the collector")
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


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
        self._errors = _ErrorLog()
        self.provider.add_span_processor(self._errors)
        self._export_failures: list[str] = []
        self.endpoint = otlp_endpoint()
        if self.endpoint is not None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter(endpoint=self.endpoint[0], timeout=5)
            watched = _WatchedExporter(exporter, self._export_failures)
            self.provider.add_span_processor(BatchSpanProcessor(watched))
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

    def error_spans(self, under: str) -> list[ErrorSpan]:
        """Spans that ended in error status inside the latest span named ``under`` (itself
        included), e.g. ``under="attempt.2"``: the evidence of an attempt's trace."""
        return self._errors.errors_under(under)

    def export_failures(self) -> list[str]:
        """Exports to the collector that failed so far (the local trace.json is unaffected)."""
        return list(self._export_failures)

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
