"""OpenTelemetry spans for every phase, step, attempt, test run and model call.

Each run gets its own `TracerProvider` (never the global one: several runs may share a
process, e.g. under pytester). Spans always go to ``trace.json`` in the run directory and,
when an endpoint is configured, over OTLP/HTTP to a collector:

- ``PHOENIX_COLLECTOR_ENDPOINT`` (a Phoenix base URL): ``PHOENIX_API_KEY`` goes along as
  ``authorization: Bearer <key>`` (what Phoenix and its own ``phoenix.otel`` use), and only to
  this endpoint; the trace's page is ``{base}/redirects/traces/{trace_id}``;
- or the standard ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_ENDPOINT``
  (and ``…_HEADERS``): a generic collector has no trace page of its own, so a link is made only
  from the ini key ``orchestrate_trace_ui`` (a Phoenix base URL, or any URL with
  ``{trace_id}`` in it).

Traces go to the Phoenix project ``PHOENIX_PROJECT_NAME`` (resource attribute
``openinference.project.name``; default ``pytest-orchestrator``). A link to the UI is given
only once an export has succeeded; until then, or when it failed, `Tracer.link` names the
local ``trace.json`` and why. Attribute names follow OpenInference where one exists
(`llm_input` / `llm_output` write the chat messages Phoenix shows).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
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
PROJECT_NAME: Final = "openinference.project.name"
DEFAULT_PROJECT: Final = "pytest-orchestrator"
MESSAGE_LIMIT: Final = 32_000
"""Characters kept of one chat message's text (its head and its tail)."""


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


class RecordingExporter(SpanExporter):
    """Wraps the OTLP exporter and remembers whether its exports succeeded, and why not."""

    def __init__(self, inner: SpanExporter, endpoint: str) -> None:
        self.inner = inner
        self.endpoint = endpoint
        self.ok: bool | None = None
        """None until the first export; then whether every export so far succeeded."""
        self.reason = ""
        self.failures: list[str] = []
        """Every failed export's reason, in order (`Tracer.export_failures`)."""
        self.status: int | None = None
        """The collector's last HTTP status (from the session's response hook)."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.status = None
        error = ""
        try:
            result = self.inner.export(spans)
        except Exception as exc:  # an exporter bug must not end the run: note it, go on
            result, error = SpanExportResult.FAILURE, f"{type(exc).__name__}: {exc}"
        if result is SpanExportResult.SUCCESS:
            self.ok = self.ok is not False
            return result
        self.ok = False
        if error:
            self.reason = f"{self.endpoint}: {error}"
        elif self.status in (401, 403):
            self.reason = (
                f"{self.endpoint} refused the spans ({self.status}): set PHOENIX_API_KEY "
                "to a key of that Phoenix"
            )
        elif self.status is not None:
            self.reason = f"{self.endpoint} answered {self.status}"
        else:
            self.reason = f"{self.endpoint} could not be reached"
        self.failures.append(f"{len(spans)} span(s) not exported: {self.reason}")
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


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
# The Review phase's trace check reads these (`Tracer.error_spans`, `Tracer.export_failures`,
# which `RecordingExporter` keeps);
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


def _headers(text: str) -> dict[str, str]:
    """``k=v,k2=v2`` (the OTLP and Phoenix header variables' format)."""
    pairs = (item.partition("=") for item in text.split(",") if "=" in item)
    return {k.strip().lower(): v.strip() for k, _, v in pairs}


def otlp_endpoint(
    env: Mapping[str, str] = os.environ, ui: str = ""
) -> tuple[str, str | None, dict[str, str]] | None:
    """``(traces endpoint, trace URL template or None, headers)`` from the environment and the
    ``orchestrate_trace_ui`` ini key, or None when no collector is configured."""
    template = None
    if ui:
        template = ui if "{trace_id}" in ui else ui.rstrip("/") + "/redirects/traces/{trace_id}"
    phoenix = env.get("PHOENIX_COLLECTOR_ENDPOINT", "").rstrip("/")
    if phoenix:
        base = phoenix.removesuffix("/v1/traces")
        headers = _headers(env.get("PHOENIX_CLIENT_HEADERS", ""))
        if env.get("PHOENIX_API_KEY"):
            headers["authorization"] = f"Bearer {env['PHOENIX_API_KEY']}"
        return f"{base}/v1/traces", template or base + "/redirects/traces/{trace_id}", headers
    headers = _headers(
        env.get("OTEL_EXPORTER_OTLP_TRACES_HEADERS") or env.get("OTEL_EXPORTER_OTLP_HEADERS", "")
    )
    traces = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").rstrip("/")
    if traces:
        return traces, template, headers
    generic = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").rstrip("/")
    if generic:
        return f"{generic}/v1/traces", template, headers
    return None


class Tracer:
    """The run's tracer: `span` opens a child of the current span."""

    def __init__(
        self,
        trace_file: Path,
        *,
        service: str = "pytest-orchestrator",
        ui: str = "",
        env: Mapping[str, str] = os.environ,
    ) -> None:
        self.trace_file = trace_file
        project = env.get("PHOENIX_PROJECT_NAME") or DEFAULT_PROJECT
        self.provider = TracerProvider(
            resource=Resource.create({"service.name": service, PROJECT_NAME: project})
        )
        self.provider.add_span_processor(SimpleSpanProcessor(JsonFileExporter(trace_file)))
        self._errors = _ErrorLog()
        self.provider.add_span_processor(self._errors)
        configured = otlp_endpoint(env, ui)
        self.endpoint = configured[0] if configured else None
        self.template = configured[1] if configured else None
        self.exporter: RecordingExporter | None = None
        if configured is not None:
            import requests  # the OTLP/HTTP exporter's own client: its session reports statuses
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            session = requests.Session()
            inner = OTLPSpanExporter(
                endpoint=configured[0], headers=configured[2], timeout=5, session=session
            )
            self.exporter = recorder = RecordingExporter(inner, configured[0])

            def note_status(response: requests.Response, *args: Any, **kwargs: Any) -> None:
                recorder.status = response.status_code

            session.hooks["response"].append(note_status)
            self.provider.add_span_processor(BatchSpanProcessor(recorder))
        self._tracer = self.provider.get_tracer("pytest_orchestrator")
        self.trace_id: str | None = None
        self._root: Span | None = None
        self._closed = False
        self.outcome: tuple[bool, str] | None = None
        """Set by `pytest_orchestrator.run.Run.finish`: the root span's status when it ends."""

    @contextmanager
    def span(self, name: str, kind: str = CHAIN, **attributes: Any) -> Iterator[Span]:
        attrs = {SPAN_KIND: kind, **{k: _attr(v) for k, v in attributes.items()}}
        with self._tracer.start_as_current_span(name, attributes=attrs) as span:
            if self.trace_id is None:
                self.trace_id = f"{span.get_span_context().trace_id:032x}"
                self._root = span
            try:
                yield span
            except BaseException as exc:
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
                raise
            if span is self._root and self.outcome is not None:
                ok, message = self.outcome
                span.set_status(Status(StatusCode.OK) if ok else Status(StatusCode.ERROR, message))

    def exported(self) -> tuple[bool, str]:
        """Whether the collector has the spans so far (pending ones are sent first), and if
        not, why."""
        if self.exporter is None:
            return False, "no collector configured"
        if not self._closed:
            self.provider.force_flush(timeout_millis=10_000)
        if self.exporter.ok is None:
            return False, f"no span has reached {self.exporter.endpoint} yet"
        return self.exporter.ok, self.exporter.reason

    def error_spans(self, under: str) -> list[ErrorSpan]:
        """Spans that ended in error status inside the latest span named ``under`` (itself
        included), e.g. ``under="attempt.2"``: the evidence of an attempt's trace."""
        return self._errors.errors_under(under)

    def export_failures(self) -> list[str]:
        """Exports to the collector that failed so far (the local trace.json is unaffected)."""
        return list(self.exporter.failures) if self.exporter is not None else []

    def link(self) -> str:
        """Where a reviewer finds the trace: its page in the UI once the collector has it,
        else the local file (and why)."""
        if self.exporter is None or self.trace_id is None:
            return str(self.trace_file)
        ok, reason = self.exported()
        if not ok:
            return f"{self.trace_file} (not exported: {reason})"
        if self.template is None:
            return (
                f"{self.trace_file} (also exported to {self.endpoint}; set orchestrate_trace_ui "
                "for a link to its UI)"
            )
        return self.template.replace("{trace_id}", self.trace_id)

    def shutdown(self) -> None:
        self.provider.force_flush(timeout_millis=5000)
        self.provider.shutdown()
        self._closed = True


def _attr(value: Any) -> Any:
    if isinstance(value, str | bool | int | float):
        return value
    return json.dumps(value, default=str)[:4000]


def clip(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """Head and tail of a long text: the start says what was asked, the end the latest turn."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n… ({len(text) - limit} characters cut) …\n{text[-half:]}"


def _set_messages(span: Span, prefix: str, messages: Sequence[Mapping[str, Any]]) -> None:
    for i, message in enumerate(messages):
        key = f"{prefix}.{i}.message"
        span.set_attribute(f"{key}.role", str(message.get("role", "")))
        content = message.get("content", "")
        if isinstance(content, str):
            span.set_attribute(f"{key}.content", clip(content))
            continue
        texts, calls = [], 0
        for block in content or []:
            block = dict(block)
            if block.get("type") == "text":
                texts.append(str(block.get("text", "")))
            elif block.get("type") == "tool_use":
                call = f"{key}.tool_calls.{calls}.tool_call"
                span.set_attribute(f"{call}.id", str(block.get("id", "")))
                span.set_attribute(f"{call}.function.name", str(block.get("name", "")))
                span.set_attribute(
                    f"{call}.function.arguments", clip(json.dumps(block.get("input", {})))
                )
                calls += 1
            elif block.get("type") == "tool_result":
                texts.append(_block_text(block.get("content")))
        span.set_attribute(f"{key}.content", clip("\n\n".join(texts)))


def _block_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(str(dict(b).get("text", "")) for b in content or [] if isinstance(b, Mapping))


def llm_input(span: Span, system: Any, messages: Sequence[Mapping[str, Any]]) -> None:
    """OpenInference ``llm.input_messages.*`` of an Anthropic request (system prompt first),
    so Phoenix shows the conversation."""
    turns: list[Mapping[str, Any]] = []
    if system:
        turns.append({"role": "system", "content": _block_text(system)})
    _set_messages(span, "llm.input_messages", [*turns, *messages])


def llm_output(span: Span, reply: Mapping[str, Any]) -> None:
    """OpenInference ``llm.output_messages.*`` of an Anthropic ``Message`` (as a dict)."""
    _set_messages(span, "llm.output_messages", [reply])
