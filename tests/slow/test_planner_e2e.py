"""End to end: a scripted Claude refactors the wheel example; a failed attempt is replanned."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_orchestrator.testing.fake_anthropic import (
    FakeAnthropic,
    count_tokens,
    edit_reply,
    plan_reply,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "wheel"
COMMAND = "Refactor sizing: extract the volatility scaling into its own function"
SIZING = "wheel_sizing/sizing.py"

PLAN = [
    {
        "id": "extract",
        "pool": "mutate",
        "op": "edit",
        "args": {
            "path": SIZING,
            "symbols": ["calculate_position_size"],
            "instruction": "Move the volatility scaling into volatility_scale(target_vol, "
            "realised_vol, limits) and call it from calculate_position_size.",
        },
    },
    {"id": "tests", "pool": "scan", "op": "run_tests", "needs": ["extract"]},
    {"id": "montecarlo", "pool": "scan", "op": "montecarlo", "needs": ["extract"]},
]
INLINE = (
    "    vol_scale = target_vol / realised_vol\n"
    "    vol_scale = min(max(vol_scale, limits.min_vol_scale), limits.max_vol_scale)\n"
    "    fraction *= vol_scale\n"
)
CALL = {
    "search": INLINE,
    "replace": "    fraction *= volatility_scale(target_vol, realised_vol, limits)\n",
}


def extracted(body: str) -> dict[str, str]:
    return {
        "search": "def calculate_position_size(\n",
        "replace": "def volatility_scale(target_vol: float, realised_vol: float, "
        "limits: SizingLimits) -> float:\n"
        '    """The regime scale ``clip(target_vol / realised_vol, lo, hi)``."""\n'
        f"    return {body}\n\n\ndef calculate_position_size(\n",
    }


FORGETS_THE_CAP = extracted("max(target_vol / realised_vol, limits.min_vol_scale)")
KEEPS_THE_CAP = extracted(
    "min(max(target_vol / realised_vol, limits.min_vol_scale), limits.max_vol_scale)"
)
SCRIPT = [
    plan_reply(
        PLAN,
        summary="Extract the volatility scaling into volatility_scale().",
        behaviour_preserving=True,
    ),
    edit_reply(CALL, FORGETS_THE_CAP),
    plan_reply(
        PLAN,
        summary="Extract the volatility scaling into volatility_scale(), clipped to both bounds.",
        behaviour_preserving=True,
    ),
    edit_reply(CALL, KEEPS_THE_CAP),
]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def wheel(tmp_path: Path) -> Path:
    """A fresh copy of the bundled example, as its own git repository."""
    repo = tmp_path / "wheel"
    shutil.copytree(
        EXAMPLE, repo, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache", ".orchestrate")
    )
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "wheel example")
    return repo


def orchestrate(repo: Path, fake: FakeAnthropic) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTHONPATH")}
    env.update(
        ANTHROPIC_BASE_URL=fake.url,
        ANTHROPIC_API_KEY="test-key",
        ANTHROPIC_MODEL="claude-sonnet-5-5",
    )
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--orchestrate",
            COMMAND,
            "--orchestrate-planner=anthropic",
            "-p",
            "no:cacheprovider",
        ],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def test_claude_extracts_the_volatility_scaling_after_one_replan(wheel: Path) -> None:
    """Attempt 1 breaks a test, the replan sees why and fixes it; the gate passes; PR.md tells."""
    before = (wheel / SIZING).read_text()
    with FakeAnthropic(SCRIPT) as fake:
        result = orchestrate(wheel, fake)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "orchestrate: GREEN" in output

    (run_dir,) = (wheel / ".orchestrate" / "runs").iterdir()
    record: dict[str, Any] = json.loads((run_dir / "run.json").read_text())
    first, second = record["attempts"]
    assert (first["green"], second["green"]) == (False, True)
    assert (
        "tests/test_sizing.py::test_volatility_scale_is_clipped[0.05-11]" in first["tests_failed"]
    )

    calls = record["tokens"]["calls"]
    assert [(c["step"], c["attempt"]) for c in calls] == [
        ("plan", 1),
        ("edit:extract", 1),
        ("replan", 2),
        ("edit:extract", 2),
    ]
    assert all(c["stop_reason"] == "tool_use" and c["latency_s"] >= 0 for c in calls)
    assert record["tokens"]["input"] == sum(c["input_tokens"] for c in calls) > 0

    pr = (run_dir / "PR.md").read_text()
    assert "**Gate: green** on attempt 2" in pr
    assert "| 1 |" in pr
    assert "| 2 |" in pr
    assert f"Model use: 4 call(s), {record['tokens']['input']} input" in pr

    # the user's checkout is untouched; the branch holds the refactoring
    assert (wheel / SIZING).read_text() == before
    merged = git(wheel, "show", f"{record['branch']}:{SIZING}")
    assert "def volatility_scale(" in merged
    assert "fraction *= volatility_scale(target_vol, realised_vol, limits)" in merged

    # on the wire: budgets held, and the replan carried the evidence of attempt 1
    plan_req, edit_req, replan_req, fix_req = (r.body for r in fake.requests)
    for body, call in zip((plan_req, edit_req, replan_req, fix_req), calls, strict=True):
        assert call["budget_source"] == "count_tokens"
        assert count_tokens(body) == call["counted_input_tokens"] <= 4000
        assert body["max_tokens"] <= 4096
    replan_text = replan_req["messages"][0]["content"]
    assert "test_volatility_scale_is_clipped[0.05-11]" in replan_text
    assert "Monte Carlo" in replan_text
    assert "+    fraction *= volatility_scale(target_vol, realised_vol, limits)" in replan_text
    assert "def calculate_position_size(" in fix_req["messages"][0]["content"]
    assert "class SizingLimits:" not in edit_req["messages"][0]["content"]  # only its slice


def test_the_fake_server_runs_as_a_subprocess(tmp_path: Path) -> None:
    """python -m pytest_orchestrator.testing.fake_anthropic serves a script file and logs
    requests."""
    import anthropic

    script = tmp_path / "replies.json"
    script.write_text(json.dumps([{"text": "hello"}, {"status": 529}]))
    port_file, log = tmp_path / "port", tmp_path / "requests.jsonl"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest_orchestrator.testing.fake_anthropic",
            "--script",
            str(script),
            "--port-file",
            str(port_file),
            "--log",
            str(log),
        ],
    )
    try:
        for _ in range(600):
            if port_file.exists() or server.poll() is not None:
                break
            time.sleep(0.05)
        client = anthropic.Anthropic(
            base_url=f"http://127.0.0.1:{port_file.read_text()}", api_key="k", max_retries=0
        )
        message = client.messages.create(
            model="claude-haiku-4-5", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        )
        assert message.content[0].text == "hello"  # type: ignore[union-attr]
        with pytest.raises(anthropic.InternalServerError):
            client.messages.create(
                model="claude-haiku-4-5",
                max_tokens=5,
                messages=[{"role": "user", "content": "again"}],
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
    logged = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["body"]["messages"][0]["content"] for r in logged] == ["hi", "again"]


@pytest.fixture
def calc(tmp_path: Path) -> Path:
    repo = tmp_path / "calc"
    repo.mkdir()
    (repo / "calc.py").write_text('def add(a, b):\n    """Return a + b."""\n    return a + b\n')
    (repo / "test_calc.py").write_text(
        "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
    )
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "calc")
    return repo


def run_command(repo: Path, fake: FakeAnthropic, command: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTHONPATH")}
    env.update(
        ANTHROPIC_BASE_URL=fake.url,
        ANTHROPIC_API_KEY="bad-key",
        ANTHROPIC_MODEL="claude-sonnet-5-5",
    )
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--orchestrate",
            command,
            "--orchestrate-planner=anthropic",
            "-p",
            "no:cacheprovider",
        ],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_a_rejected_key_stops_the_run_and_says_what_to_set(calc: Path) -> None:
    """A 401 is not retried; the run ends with exit status 4 and the fix in the message."""
    with FakeAnthropic([{"status": 401, "error": {"message": "invalid x-api-key"}}]) as fake:
        result = run_command(calc, fake, "Make add reject strings")
    output = result.stdout + result.stderr
    assert result.returncode == 4, output
    assert "set ANTHROPIC_API_KEY (or ANTHROPIC_AUTH_TOKEN) to a valid key" in output
    assert len(fake.requests) == 1
    assert git(calc, "branch", "--list").strip() == "* main"


def test_a_plan_invalid_twice_ends_the_run_as_an_invalid_plan(calc: Path) -> None:
    """Two invalid answers: nothing changes, exit status 4, the problems are shown."""
    bad = plan_reply([{"id": "x", "pool": "scan", "op": "format_disk", "args": {}}])
    with FakeAnthropic([bad, bad]) as fake:
        result = run_command(calc, fake, "Make add reject strings")
    output = result.stdout + result.stderr
    assert result.returncode == 4, output
    assert "unknown op 'format_disk'" in output
    record = json.loads(
        next((calc / ".orchestrate" / "runs").iterdir()).joinpath("run.json").read_text()
    )
    assert record["exit_reason"] == "invalid_plan"
    assert [c["step"] for c in record["tokens"]["calls"]] == ["plan", "plan"]
