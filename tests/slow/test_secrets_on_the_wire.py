"""A run that gets a garbled reply from the model ends with exit status 4 and a message, not a
traceback (a real ``pytest --orchestrate`` against the local stand-in)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pytest_orchestrator.testing.fake_anthropic import FakeAnthropic
from tests.conftest import git


def test_a_garbled_reply_ends_the_run_with_exit_4_and_no_traceback(tmp_path: Path) -> None:
    """An HTML page instead of a Message, every time: exit status 4, and what to check."""
    repo = tmp_path / "calc"
    repo.mkdir()
    (repo / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    (repo / "test_calc.py").write_text(
        "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
    )
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "calc")
    html = {"body": "<html><title>Proxy login</title></html>", "content_type": "text/html"}
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTHONPATH")}
    with FakeAnthropic([html, html]) as fake:
        env.update(
            ANTHROPIC_BASE_URL=fake.url,
            ANTHROPIC_API_KEY="test-key",
            ORCHESTRATE_LLM_RETRIES="1",
        )
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "--orchestrate",
                "Make add reject strings",
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
    output = result.stdout + result.stderr
    assert result.returncode == 4, output
    assert "garbled reply" in output
    assert "ANTHROPIC_BASE_URL" in output
    assert "Traceback" not in output
    assert len(fake.requests) == 2
    record = json.loads(
        next((repo / ".orchestrate" / "runs").iterdir()).joinpath("run.json").read_text()
    )
    assert record["exit_reason"] == "bad_input"
