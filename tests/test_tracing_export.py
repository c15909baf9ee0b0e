"""Spans reach an auth-enabled Phoenix (a loopback OTLP receiver that requires the key), and
the trace link is a UI page only when the collector has the trace."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from pytest_orchestrator.testing.fake_phoenix import FakePhoenix
from pytest_orchestrator.tracing import LLM, Tracer, llm_input, llm_output


@pytest.fixture
def phoenix() -> Iterator[FakePhoenix]:
    with FakePhoenix().serve() as fake:
        yield fake


def test_with_the_key_spans_arrive_in_the_project_and_the_link_opens_the_trace(
    tmp_path: Path, phoenix: FakePhoenix
) -> None:
    env = {
        "PHOENIX_COLLECTOR_ENDPOINT": phoenix.url,
        "PHOENIX_API_KEY": "phx-test-key",
        "PHOENIX_PROJECT_NAME": "ci-runs",
    }
    tracer = Tracer(tmp_path / "trace.json", env=env)
    with tracer.span("orchestrate", kind="AGENT"), tracer.span("phase.map"):
        pass
    with tracer.span("orchestrate-2"):
        link = tracer.link()
    assert link == f"{phoenix.url}/redirects/traces/{tracer.trace_id}"
    tracer.shutdown()
    assert phoenix.refused == 0
    assert {s.name for s in phoenix.spans()} >= {"orchestrate", "phase.map"}
    assert phoenix.resource_attributes()["openinference.project.name"] == "ci-runs"
    assert {h["authorization"] for h in phoenix.headers} == {"Bearer phx-test-key"}


def test_without_the_key_the_link_is_the_local_file_and_says_why(
    tmp_path: Path, phoenix: FakePhoenix
) -> None:
    tracer = Tracer(tmp_path / "trace.json", env={"PHOENIX_COLLECTOR_ENDPOINT": phoenix.url})
    with tracer.span("orchestrate"):
        with tracer.span("phase.map"):
            pass
        link = tracer.link()
    tracer.shutdown()
    assert phoenix.accepted == []
    assert phoenix.refused >= 1
    assert link.startswith(str(tmp_path / "trace.json"))
    assert "refused the spans (401): set PHOENIX_API_KEY" in link
    assert "redirects" not in link


def test_the_root_span_status_follows_the_outcome(tmp_path: Path, phoenix: FakePhoenix) -> None:
    env = {"PHOENIX_COLLECTOR_ENDPOINT": phoenix.url, "PHOENIX_API_KEY": "phx-test-key"}
    for ok, code in ((True, Status.STATUS_CODE_OK), (False, Status.STATUS_CODE_ERROR)):
        phoenix.accepted.clear()
        tracer = Tracer(tmp_path / f"{ok}.json", env=env)
        with tracer.span("orchestrate"):
            with tracer.span("phase.map"):
                pass
            tracer.outcome = (ok, "" if ok else "tests_failed: the gate stayed red")
        tracer.shutdown()
        (root,) = [s for s in phoenix.spans() if s.name == "orchestrate"]
        assert root.status.code == code
        (child,) = [s for s in phoenix.spans() if s.name == "phase.map"]
        assert child.status.code == Status.STATUS_CODE_UNSET
        local = json.loads((tmp_path / f"{ok}.json").read_text())["spans"]
        assert {s["name"]: s["status"] for s in local}["orchestrate"] == ("OK" if ok else "ERROR")


def test_a_generic_collector_gets_no_invented_link_and_no_phoenix_key(
    tmp_path: Path,
) -> None:
    with FakePhoenix(key=None).serve() as collector:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "PHOENIX_API_KEY": "phx-secret"}
        tracer = Tracer(tmp_path / "trace.json", env=env)
        with tracer.span("orchestrate"):
            with tracer.span("phase.map"):
                pass
            link = tracer.link()
        ui = Tracer(tmp_path / "ui.json", env=env, ui="https://jaeger.example/trace/{trace_id}")
        with ui.span("orchestrate"):
            with ui.span("phase.map"):
                pass
            ui_link = ui.link()
        tracer.shutdown()
        ui.shutdown()
    assert link.startswith(str(tmp_path / "trace.json"))
    assert "set orchestrate_trace_ui" in link
    assert collector.url not in link.split("(")[0]
    assert ui_link == f"https://jaeger.example/trace/{ui.trace_id}"
    assert all("authorization" not in h for h in collector.headers)
    assert "phx-secret" not in json.dumps(collector.headers)


def test_llm_spans_carry_the_conversation_as_openinference_messages(
    tmp_path: Path, phoenix: FakePhoenix
) -> None:
    env = {"PHOENIX_COLLECTOR_ENDPOINT": phoenix.url, "PHOENIX_API_KEY": "phx-test-key"}
    tracer = Tracer(tmp_path / "trace.json", env=env)
    long = "x" * 40_000 + "THE END"
    with tracer.span("llm.plan", kind=LLM) as span:
        llm_input(
            span,
            [{"type": "text", "text": "You plan changes."}],
            [{"role": "user", "content": "Rename add to plus"}, {"role": "user", "content": long}],
        )
        llm_output(
            span,
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Here is the plan."},
                    {"type": "tool_use", "id": "t1", "name": "submit_plan", "input": {"a": 1}},
                ],
            },
        )
    tracer.shutdown()
    (llm,) = phoenix.spans()
    attrs = {a.key: a.value.string_value for a in llm.attributes}
    assert attrs["llm.input_messages.0.message.role"] == "system"
    assert attrs["llm.input_messages.0.message.content"] == "You plan changes."
    assert attrs["llm.input_messages.1.message.content"] == "Rename add to plus"
    assert attrs["llm.input_messages.2.message.content"].endswith("THE END")
    assert attrs["llm.output_messages.0.message.role"] == "assistant"
    assert attrs["llm.output_messages.0.message.content"] == "Here is the plan."
    call = "llm.output_messages.0.message.tool_calls.0.tool_call"
    assert attrs[f"{call}.function.name"] == "submit_plan"
    assert json.loads(attrs[f"{call}.function.arguments"]) == {"a": 1}
