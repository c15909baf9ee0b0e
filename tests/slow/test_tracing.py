"""Every phase, step, attempt and test run is a span; spans reach a collector over OTLP."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from pytest_orchestrator.testing.fake_phoenix import FakePhoenix


@pytest.fixture
def collector() -> Iterator[FakePhoenix]:
    """A local OTLP/HTTP endpoint that, like an auth-enabled Phoenix, requires the API key."""
    with FakePhoenix().serve() as phoenix:
        yield phoenix


def test_spans_reach_the_collector_and_pr_links_the_trace(
    pytester: pytest.Pytester,
    make_repo: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    collector: FakePhoenix,
) -> None:
    """With PHOENIX_COLLECTOR_ENDPOINT and PHOENIX_API_KEY set, the run exports one trace over
    OTLP/HTTP into PHOENIX_PROJECT_NAME, its root span OK, and PR.md links to it as
    {base}/redirects/traces/{trace_id}."""
    base = collector.url
    repo = make_repo()
    monkeypatch.setenv("PHOENIX_COLLECTOR_ENDPOINT", base)
    monkeypatch.setenv("PHOENIX_API_KEY", collector.key or "")
    monkeypatch.setenv("PHOENIX_PROJECT_NAME", "orchestrate-ci")
    result = pytester.runpytest_subprocess("--orchestrate", "Rename add to plus")
    assert result.ret == 0, result.stdout.str()
    spans = collector.spans()
    assert collector.refused == 0
    assert collector.resource_attributes()["openinference.project.name"] == "orchestrate-ci"
    (root,) = [s for s in spans if s.name == "orchestrate"]
    assert root.status.code == Status.STATUS_CODE_OK
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


def test_without_the_key_pr_md_links_the_local_trace_and_says_why(
    pytester: pytest.Pytester,
    make_repo: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    collector: FakePhoenix,
) -> None:
    """Phoenix refuses the spans (401): PR.md names trace.json and the reason, never a page
    that does not exist."""
    repo = make_repo()
    monkeypatch.setenv("PHOENIX_COLLECTOR_ENDPOINT", collector.url)
    monkeypatch.delenv("PHOENIX_API_KEY", raising=False)
    result = pytester.runpytest_subprocess("--orchestrate", "Rename add to plus")
    assert result.ret == 0, result.stdout.str()
    assert collector.accepted == []
    assert collector.refused >= 1
    (run_dir,) = (repo / ".orchestrate" / "runs").iterdir()
    pr = (run_dir / "PR.md").read_text()
    assert "redirects/traces" not in pr
    assert f"- Trace: {run_dir / 'trace.json'} (not exported: " in pr
    assert "refused the spans (401): set PHOENIX_API_KEY" in pr


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
