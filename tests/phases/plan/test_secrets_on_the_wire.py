"""No secret leaves the machine: every place targeted tries leaked from, planted and checked.

The real anthropic planner plans, edits, replans and edits again against the local stand-in;
then every request body the stand-in received is searched for every planted value — as the
raw bytes on the wire and as every decoded string. (A run that gets a garbled reply: in
tests/slow/test_secrets_on_the_wire.py.)
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pytest_orchestrator.model import RankedSlice, Slice
from pytest_orchestrator.phases.plan.llm import LlmConfig
from pytest_orchestrator.phases.plan.planners import Failure, PlanContext
from pytest_orchestrator.phases.plan.planners.anthropic import AnthropicPlanner
from pytest_orchestrator.plan import OPS, Budgets, Plan, Step
from pytest_orchestrator.testing.fake_anthropic import FakeAnthropic, edit_reply, plan_reply
from pytest_orchestrator.tokens import TokenLedger

ENV_TOKEN = "Tr0ub4dor&3-pay"  # no known shape: only its variable's name says it is secret
ENV_DB_URL = "postgres://svc:EnvDbPass-91@db.internal/prod"
COMMAND_PASSWORD = "Sw0rdfish-planted"
BASE64_KEY = "k3Y+9fJ2sLq8Pz0wXc7VbN4mR1tY6uI5oE2aS9dF0gH="
ENV_DEFAULT = "fallback-planted-default"
SLACK_HOOK = "T0PLANTED/B0PLANTED/xP9vQ2mL7rT4kZ1wB8nC3hD"
CONNECTION_PASSWORD = "ConnPl4nted"
SETTINGS_LITERAL = "Lp9Vx2Qm7Rt4Zk1Wb8Nc3Hd6Fq"
PLANTED = {
    "env value printed by a failing test": ENV_TOKEN,
    "env connection string": "EnvDbPass-91",
    "password in the command": COMMAND_PASSWORD,
    "bare base64 key in a source file": BASE64_KEY,
    "os.environ.get default": ENV_DEFAULT,
    "Slack webhook in settings.py": SLACK_HOOK,
    "connection string in settings.py": CONNECTION_PASSWORD,
    "random literal in settings.py": SETTINGS_LITERAL,
}

CLIENT = f'''\
"""The payments client."""

import os

API_KEY = os.environ.get("PAYMENTS_API_KEY", "{ENV_DEFAULT}")
SIGNING = "{BASE64_KEY}"


def connect(region: str) -> str:
    """Connect to the region's endpoint."""
    return f"https://{{region}}.payments.example"
'''
SETTINGS = f'''\
"""Settings of the service."""

ALERTS = "https://hooks.slack.com/services/{SLACK_HOOK}"
DATABASE = "postgresql://app:{CONNECTION_PASSWORD}@db.internal:5432/app"
SIGNATURE = "{SETTINGS_LITERAL}"
REGION = "eu-west-1"
'''
STEPS = [
    {
        "id": "region",
        "pool": "mutate",
        "op": "edit",
        "args": {
            "path": "pkg/client.py",
            "symbols": ["connect"],
            "instruction": "default the region to REGION from pkg.settings",
        },
    }
]
EDIT = {
    "search": "def connect(region: str) -> str:\n",
    "replace": 'def connect(region: str = "eu-west-1") -> str:\n',
}


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "client.py").write_text(CLIENT)
    (root / "pkg" / "settings.py").write_text(SETTINGS)
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    return root


def whole(root: Path, path: str) -> RankedSlice:
    lines = len((root / path).read_text().splitlines())
    s = Slice(
        path=path,
        symbol="<module>",
        kind="module",
        start_line=1,
        end_line=lines,
        hash="0" * 40,
        tokens=80,
    )
    return RankedSlice(slice=s, score=1.0)


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (str(k), *strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


def test_no_planted_secret_reaches_any_request_body(
    repo: Path, fake: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Plan, edit, replan (with a failing test that printed an env value) and edit again."""
    monkeypatch.setenv("PAYMENTS_API_TOKEN", ENV_TOKEN)
    monkeypatch.setenv("DATABASE_URL", ENV_DB_URL)
    fake.push(plan_reply(STEPS), edit_reply(EDIT), plan_reply(STEPS), edit_reply(EDIT))
    planner = AnthropicPlanner(LlmConfig(model="claude-sonnet-4-6", mcp_max_tool_calls=0))
    ctx = PlanContext(
        command=f"Default connect() to our region; the staging password is {COMMAND_PASSWORD}",
        worktree=repo,
        slices=[whole(repo, "pkg/client.py"), whole(repo, "pkg/settings.py")],
        outline=["pkg/client.py", "pkg/settings.py"],
        tests=[],
        budgets=Budgets(),
        ops=dict(OPS),
        ledger=TokenLedger(),
    )
    (plan,) = planner.plan(ctx)
    failure = Failure(
        attempt=1,
        evidence=(
            "FAILED tests/test_client.py::test_token - AssertionError\n"
            f"  E   AssertionError: assert {os.environ['PAYMENTS_API_TOKEN']!r} == 'sandbox'\n"
            f"  E   db={os.environ['DATABASE_URL']}\n"
            "----- Captured stdout call -----\n"
            f"{os.environ['PAYMENTS_API_TOKEN']}"
        ),
        diff=(
            "diff --git a/pkg/settings.py b/pkg/settings.py\n"
            f'@@ -5 +5 @@\n SIGNATURE = "{SETTINGS_LITERAL}"\n-REGION = "eu-west-1"\n'
            '+REGION = "eu-central-1"\n'
        ),
        plan=Plan(command=ctx.command, steps=[Step(id="t", pool="scan", op="run_tests")]),
    )
    planner.replan(ctx, failure)

    assert [r.body["tool_choice"]["name"] for r in fake.requests] == [
        "submit_plan",
        "submit_edits",
        "submit_plan",
        "submit_edits",
    ]
    for request in fake.requests:
        decoded = strings(request.body)
        for where, secret in PLANTED.items():
            assert secret not in request.raw, where
            assert not any(secret in s for s in decoded), where
    replan = fake.requests[2].body["messages"][0]["content"]
    assert "[REDACTED:env]" in replan  # the printed value was there, and scrubbed
    assert "hooks.slack.com/services/[REDACTED:slack-webhook]" in fake.requests[0].raw
    assert "def connect(region: str) -> str:" in fake.requests[1].raw  # the code is still shown
    assert plan.steps[0].op == "replace_block"
