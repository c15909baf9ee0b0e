"""The tracer's error-span API: what ended in error inside an attempt, and failed exports."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from pytest_orchestrator.model import Attempt
from pytest_orchestrator.phases.review.trace_errors import checks
from pytest_orchestrator.plan import Plan
from pytest_orchestrator.tracing import RecordingExporter, Tracer


def attempt(number: int) -> Attempt:
    return Attempt(number=number, plan=Plan(command="c", steps=[]))


def test_error_spans_inside_the_attempt_gate_it(tmp_path: Path) -> None:
    tracer = Tracer(tmp_path / "trace.json")
    with tracer.span("phase.plan"), pytest.raises(ValueError, match="not the attempt"):  # noqa: SIM117
        with tracer.span("outside"):
            raise ValueError("not the attempt's")
    with tracer.span("attempt.1"), tracer.span("step.s1"):
        try:
            with tracer.span("nested"):
                raise RuntimeError("swallowed by the step")
        except RuntimeError:
            pass
    (error,) = tracer.error_spans(under="attempt.1")
    assert error.name == "nested"
    assert error.message == "RuntimeError: swallowed by the step"
    assert error.ancestors == ("step.s1", "attempt.1")
    (check,) = checks(tracer, attempt(1))
    assert not check.ok
    assert "swallowed by the step" in check.detail
    with tracer.span("attempt.2"):
        pass
    assert tracer.error_spans(under="attempt.2") == []
    assert [c.ok for c in checks(tracer, attempt(2))] == [True]
    tracer.shutdown()


class Refusing(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        raise ConnectionError("collector down")


def test_a_failed_export_is_reported_not_gating(tmp_path: Path) -> None:
    tracer = Tracer(tmp_path / "trace.json")
    tracer.exporter = RecordingExporter(Refusing(), "http://127.0.0.1:9/v1/traces")
    assert tracer.exporter.export([]) is SpanExportResult.FAILURE
    with tracer.span("attempt.1"):
        pass
    gate, export = checks(tracer, attempt(1))
    assert gate.ok
    assert export.ok
    assert "collector down" in export.detail
    tracer.shutdown()
