"""Real `pytest --orchestrate` runs reaching Claude by a gateway token: the header says the
route, and a reply that is not a Message ends the run with exit 4 and no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_orchestrator.testing.fake_anthropic import FakeAnthropic

ROUTE_VARIABLES = (
    "ANTHROPIC_API_KEY",
    "CLAUDE_CODE_USE_BEDROCK",
    "CLAUDE_CODE_USE_VERTEX",
    "PYTEST_ADDOPTS",
    "PYTHONPATH",
)


@pytest.fixture
def calc(tmp_path: Path) -> Path:
    repo = tmp_path / "calc"
    repo.mkdir()
    (repo / "calc.py").write_text('def add(a, b):\n    """Return a + b."""\n    return a + b\n')
    (repo / "test_calc.py").write_text(
        "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
    )
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "calc"]):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)
    return repo


@pytest.mark.parametrize(
    "reply",
    [
        {"body": '{"id": "msg_01", "type": "message", "content": [{"ty'},
        {"body": "<html><body>502 Bad Gateway</body></html>", "content_type": "text/html"},
        {"body": '{"type": "error", "error": {"type": "api_error", "message": "x"}}'},
    ],
    ids=["truncated", "html", "not-a-message"],
)
def test_a_gateway_token_alone_plans_with_claude_and_bad_replies_exit_4(
    calc: Path, reply: dict[str, str]
) -> None:
    """ANTHROPIC_AUTH_TOKEN only: auto picks Claude and the header names the route; replies
    that stay garbled after the retries end the run with a clear message, exit 4."""
    with FakeAnthropic([reply, reply]) as fake:
        env = {k: v for k, v in os.environ.items() if k not in ROUTE_VARIABLES}
        env.update(
            ANTHROPIC_AUTH_TOKEN="gateway-token",
            ANTHROPIC_BASE_URL=fake.url,
            ANTHROPIC_MODEL="claude-sonnet-5-5",
            ORCHESTRATE_LLM_RETRIES="1",
        )
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "--orchestrate",
                "Make add reject strings",
                "-p",
                "no:cacheprovider",
            ],
            cwd=calc,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    output = result.stdout + result.stderr
    assert result.returncode == 4, output
    assert "planner: anthropic, Claude via the Anthropic API (bearer token)" in output
    assert "garbled reply" in output
    assert "ANTHROPIC_BASE_URL points at the Messages API" in output
    assert "Traceback" not in output
    assert len(fake.requests) == 2
    assert {r["headers"]["authorization"] for r in fake.requests} == {"Bearer gateway-token"}
