"""Trace errors as evidence: which spans in error gate an attempt, and which are only reported.

This is the one place that says which is which:

* **Gating**: a span that ended in error status inside the attempt's own span
  (``attempt.N``): a step's exception, a nested operation a step swallowed, the gate run, a
  child that crashed. The attempt's own work failed, so the attempt is red and the span's
  message goes back to the planner.
* **Reported, not gating**: failures to export spans to a collector (Phoenix, OTLP). They
  say nothing about the change: the local ``trace.json`` is complete either way.
"""

from __future__ import annotations

from typing import Final

from pytest_orchestrator.model import Attempt, Check, CheckFinding
from pytest_orchestrator.phases.review.findings import finding
from pytest_orchestrator.tracing import Tracer

NAME: Final = "trace"
EXPORT: Final = "trace-export"


def attempt_span(attempt: Attempt) -> str:
    """The name Execute gives the attempt's span."""
    return f"attempt.{attempt.number}"


def checks(tracer: Tracer, attempt: Attempt) -> list[Check]:
    """The gating check of the attempt's error spans, and a reporting one for exports."""
    errors = tracer.error_spans(under=attempt_span(attempt))
    found: list[CheckFinding] = [
        finding(NAME, "span-error", "", 0, f"{e.name}: {e.message or 'ended in error'}")
        for e in errors
    ]
    if found:
        gate = Check(
            name=NAME,
            ok=False,
            detail=f"{len(found)} span(s) of attempt {attempt.number} ended in error: "
            + "; ".join(f.message for f in found[:3]),
            findings=found,
            attempt_findings=len(found),
        )
    else:
        gate = Check(
            name=NAME,
            ok=True,
            detail=f"no span of attempt {attempt.number} ended in error",
            attempt_findings=0,
        )
    result = [gate]
    failures = tracer.export_failures()
    if failures:
        result.append(
            Check(
                name=EXPORT,
                ok=True,  # not the change's doing: reported, never gating
                detail=f"{len(failures)} export(s) to the trace collector failed "
                f"(trace.json is complete): {failures[-1]}",
            )
        )
    return result
