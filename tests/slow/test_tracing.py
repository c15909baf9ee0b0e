"""Every phase, step, attempt and test run is a span; spans reach a collector over OTLP."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


class Collector(BaseHTTPRequestHandler):
    received: ClassVar[list[ExportTraceServiceRequest]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        type(self).received.append(request)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, list[ExportTraceServiceRequest]]]:
    """A local OTLP/HTTP endpoint (what Phoenix listens on), recording each export."""
    Collector.received = []
    server = HTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", Collector.received
    server.shutdown()
    thread.join()


def test_spans_reach_the_collector_and_pr_links_the_trace(
    pytester: pytest.Pytester,
    make_repo: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    collector: tuple[str, list[ExportTraceServiceRequest]],
) -> None:
    """With PHOENIX_COLLECTOR_ENDPOINT set, the run exports one trace over OTLP/HTTP and
    PR.md links to it as {base}/redirects/traces/{trace_id}."""
    base, received = collector
    repo = make_repo()
    monkeypatch.setenv("PHOENIX_COLLECTOR_ENDPOINT", base)
    result = pytester.runpytest_subprocess("--orchestrate", "Rename add to plus")
    assert result.ret == 0, result.stdout.str()
    spans = [
        span
        for request in received
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]
    names = {s.name for s in spans}
    assert {
        "orchestrate",
        "phase.map",
        "phase.logic",
        "phase.montecarlo",
        "phase.plan",
        "phase.optimise",
        "phase.execute",
        "phase.review",
        "phase.publish",
        "attempt.1",
        "step.rename",
        "gate.1",
        "tests.baseline",
    } <= names
    trace_ids = {s.trace_id.hex() for s in spans}
    assert len(trace_ids) == 1, "every span belongs to the run's one trace"
    (trace_id,) = trace_ids
    (run_dir,) = (repo / ".orchestrate" / "runs").iterdir()
    assert f"{base}/redirects/traces/{trace_id}" in (run_dir / "PR.md").read_text()


def test_without_a_collector_the_trace_is_a_local_file(
    pytester: pytest.Pytester, make_repo: Callable[..., Path]
) -> None:
    """trace.json holds the spans as a tree under the run's root span; PR.md points at it."""
    repo = make_repo()
    assert pytester.runpytest_subprocess("--orchestrate", "Rename add to plus").ret == 0
    (run_dir,) = (repo / ".orchestrate" / "runs").iterdir()
    spans = json.loads((run_dir / "trace.json").read_text())["spans"]
    by_id = {s["span_id"]: s for s in spans}
    (root,) = [s for s in spans if s["parent_id"] is None]
    assert root["name"] == "orchestrate"
    assert root["attributes"]["openinference.span.kind"] == "AGENT"
    step = next(s for s in spans if s["name"] == "gate.1")
    chain = []
    while step["parent_id"]:
        step = by_id[step["parent_id"]]
        chain.append(step["name"])
    assert chain == ["attempt.1", "phase.execute", "orchestrate"]
    assert str(run_dir / "trace.json") in (run_dir / "PR.md").read_text()
