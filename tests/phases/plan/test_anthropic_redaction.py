"""Planted secrets never reach the wire: every request body of a plan/edit/replan is inspected."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pytest_orchestrator.model import RankedSlice, Slice
from pytest_orchestrator.phases.plan.llm import LlmConfig
from pytest_orchestrator.phases.plan.planners import Failure, PlanContext
from pytest_orchestrator.phases.plan.planners.anthropic import AnthropicPlanner
from pytest_orchestrator.plan import OPS, Budgets, Plan, Step
from pytest_orchestrator.testing.fake_anthropic import FakeAnthropic, edit_reply, plan_reply
from pytest_orchestrator.tokens import TokenLedger

GITHUB_TOKEN = "ghp_" + "PLANTEDgithubTOKEN0123456789abcdef"
ENV_KEY = "sk-ant-api03-PLANTEDenvKEY-0123456789abcdefghij"
DB_PASSWORD = "planted-db-password-from-local-settings"
KEY_BODY = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUPLANTED"
AWS_KEY = "AKIAPLANTEDAWSKEY123"
TRACEBACK_TOKEN = "xoxb-999999999999-PLANTEDslackTOKEN"
EVERY_SECRET = [GITHUB_TOKEN, ENV_KEY, DB_PASSWORD, KEY_BODY, AWS_KEY, TRACEBACK_TOKEN]

CONFIG = f'''\
"""Settings of the service."""

GITHUB_TOKEN = "{GITHUB_TOKEN}"


def connect(region: str) -> str:
    """Connect with the deploy key."""
    access = "{AWS_KEY}"
    return f"{{region}}:{{access}}"
'''


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "pkg").mkdir(parents=True)
    (root / "deploy").mkdir()
    (root / "pkg" / "config.py").write_text(CONFIG)
    (root / ".gitignore").write_text("local_settings.py\n")
    (root / "local_settings.py").write_text(f'def db():\n    return "{DB_PASSWORD}"\n')
    (root / ".env").write_text(f"ANTHROPIC_API_KEY={ENV_KEY}\n")
    (root / "deploy" / "id_ed25519").write_text(
        f"-----BEGIN OPENSSH PRIVATE KEY-----\n{KEY_BODY}\n-----END OPENSSH PRIVATE KEY-----\n"
    )
    git(root, "init", "-q")
    git(root, "add", "pkg", ".gitignore", "deploy", ".env")  # even a committed .env stays home
    git(root, "commit", "-qm", "base")
    return root


def whole_file(path: str, symbol: str, lines: int) -> RankedSlice:
    s = Slice(
        path=path,
        symbol=symbol,
        kind="module",
        start_line=1,
        end_line=lines,
        hash="0" * 40,
        tokens=50,
    )
    return RankedSlice(slice=s, score=1.0)


def secret_context(root: Path) -> PlanContext:
    """A context whose slices and outline point straight at the secrets (as a bad Map might)."""
    return PlanContext(
        command="Make connect() read the region from the environment",
        worktree=root,
        slices=[
            whole_file(".env", "<module>", 1),
            whole_file("local_settings.py", "db", 2),
            whole_file("deploy/id_ed25519", "<module>", 3),
            whole_file("pkg/config.py", "connect", 9),
        ],
        outline=[".env", ".gitignore", "deploy/id_ed25519", "local_settings.py", "pkg/config.py"],
        tests=[],
        budgets=Budgets(),
        ops=dict(OPS),
        ledger=TokenLedger(),
    )


def test_planted_secrets_never_reach_the_wire(repo: Path, fake: FakeAnthropic) -> None:
    """Plan, edit and replan requests carry no secret: not from files, slices or evidence."""
    steps = [
        {
            "id": "env",
            "pool": "mutate",
            "op": "edit",
            "args": {
                "path": "pkg/config.py",
                "symbols": ["connect"],
                "instruction": "read the region from REGION",
            },
        }
    ]
    edit = {
        "search": "def connect(region: str) -> str:\n",
        "replace": 'def connect(region: str = "eu") -> str:\n',
    }
    fake.push(plan_reply(steps), edit_reply(edit), plan_reply(steps), edit_reply(edit))
    planner = AnthropicPlanner(LlmConfig(model="claude-sonnet-4-6", mcp_max_tool_calls=0))
    ctx = secret_context(repo)
    (plan,) = planner.plan(ctx)
    previous = Plan(command=ctx.command, steps=[Step(id="t", pool="scan", op="run_tests")])
    failure = Failure(
        attempt=1,
        evidence=f"FAILED tests/test_config.py::test_connect - RuntimeError: {TRACEBACK_TOKEN}",
        diff=f'+++ b/pkg/config.py\n+GITHUB_TOKEN = "{GITHUB_TOKEN}"\n',
        plan=previous,
    )
    planner.replan(ctx, failure)

    assert len(fake.requests) == 4
    for request in fake.requests:
        for secret in EVERY_SECRET:
            assert secret not in request.raw
        assert "PRIVATE KEY" not in request.raw
        assert "local_settings" not in request.raw
        assert "id_ed25519" not in request.raw
    first = fake.requests[0].body["messages"][0]["content"]
    assert "pkg/config.py::connect" in first  # the allowed file is shown ...
    assert "[REDACTED:github-token]" in first  # ... with its secrets scrubbed
    assert ".env" not in first
    assert "[REDACTED:" in fake.requests[2].raw  # the replan's evidence was scrubbed too
    assert plan.steps[0].op == "replace_block"


def test_an_ignored_file_cannot_be_edited_by_the_model(repo: Path, fake: FakeAnthropic) -> None:
    """An edit step aimed at a secret file fails without sending that file anywhere."""
    from pytest_orchestrator.errors import EditError

    steps = [
        {
            "id": "leak",
            "pool": "mutate",
            "op": "edit",
            "args": {"path": ".env", "instruction": "rotate the key"},
        }
    ]
    fake.push(plan_reply(steps))
    planner = AnthropicPlanner(LlmConfig(model="claude-sonnet-4-6", mcp_max_tool_calls=0))
    with pytest.raises(EditError, match="ignored or holds secrets"):
        planner.plan(secret_context(repo))
    assert len(fake.requests) == 1
    assert ENV_KEY not in fake.requests[0].raw
