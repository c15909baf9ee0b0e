"""The example workflow's shell steps, run as a runner runs them, against the GitHub stand-in:
a collaborator's ``/orchestrate …`` comment ends in a pull request, a job summary and the
run directory where the upload step takes it. (The install step is left out here: it needs
the package index, and the test's interpreter already has the plugin; tests/test_example_workflow.py
runs it with a recording ``python``.)"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_orchestrator.testing.fake_github import FakeGitHub
from tests.conftest import git
from tests.test_example_workflow import Runner, comment_event, step, steps


def test_a_comment_runs_the_workflow_to_a_pull_request_and_a_job_summary(
    pytester: pytest.Pytester, make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    repo = make_repo()
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "push", "-q", "origin", "main")
    workspace = tmp_path / "workspace"  # what actions/checkout leaves
    git(tmp_path, "clone", "-q", str(origin), str(workspace))
    temp = tmp_path / "runner-temp"
    temp.mkdir()

    with FakeGitHub(origin).serve() as github:
        runner = Runner(
            workspace,
            temp,
            comment_event("/orchestrate Rename add to plus, post PR"),
            base_env={
                "GITHUB_REPOSITORY": github.slug,
                "GITHUB_API_URL": github.url,
                "GITHUB_SERVER_URL": "https://github.com",
            },
        )
        ran = []
        for s in steps():
            if "run" in s and s.get("id") != "install":
                proc = runner.run(s)
                ran.append(s.get("name"))
                assert proc.returncode == 0, proc.stdout + proc.stderr
        assert ran == ["Read the command", "Orchestrate"]

    (pr,) = github.open_pulls()
    assert pr["head"]["ref"] == "orchestrate/rename-add-to-plus"
    (run_dir,) = (temp / "orchestrate-runs").iterdir()  # the upload step's path
    assert pr["body"] == (run_dir / "PR.md").read_text()
    summary = runner.summary.read_text()
    assert "pytest-orchestrator: green" in summary
    assert f"- PR: {pr['html_url']}" in summary
    assert "| baseline | 3 | 3 |" in summary
    assert "| gate | 3 | 3 |" in summary
    assert "- Monte Carlo:" in summary
    assert "- Trace: " in summary
    assert "- Attempts: 1 of 3" in summary
    assert git(workspace, "status", "--porcelain") == ""  # the checkout is left as it was
    assert step(name="Upload the run directory")["with"]["path"].endswith("/orchestrate-runs")
