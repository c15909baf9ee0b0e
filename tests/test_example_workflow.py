"""The example GitHub workflow (examples/github/orchestrate.yml): its shape, and its shell
steps run locally the way a runner runs them (``bash -eo pipefail``, ``$GITHUB_ENV`` read
back between steps, expressions only in ``env:``)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

WORKFLOW = Path(__file__).parents[1] / "examples" / "github" / "orchestrate.yml"
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def workflow() -> dict[Any, Any]:
    loaded: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text())
    return loaded


def steps() -> list[dict[str, Any]]:
    job = workflow()["jobs"]["orchestrate"]
    return list(job["steps"])


@dataclass
class Runner:
    """What a GitHub-hosted runner gives a job's ``run:`` steps."""

    workspace: Path
    temp: Path
    expressions: dict[str, str]
    """Each ``${{ … }}`` the steps' ``env:`` use, and its value in this event."""
    base_env: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.github_env = self.temp / "github_env"
        self.summary = self.temp / "step_summary"
        for path in (self.github_env, self.summary):
            path.write_text("")

    def run(self, step: dict[str, Any], timeout: float = 600) -> subprocess.CompletedProcess[str]:
        env = {
            **self.base_env,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "HOME": os.environ.get("HOME", str(self.temp)),
            "GITHUB_ENV": str(self.github_env),
            "GITHUB_STEP_SUMMARY": str(self.summary),
            "RUNNER_TEMP": str(self.temp),
            "GITHUB_WORKSPACE": str(self.workspace),
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            **self.env,
        }
        for key, value in (step.get("env") or {}).items():
            env[key] = EXPRESSION.sub(lambda m: self.expressions[m[1]], str(value))
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=self.workspace,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        self.env.update(read_github_env(self.github_env.read_text()))
        return proc


def read_github_env(text: str) -> dict[str, str]:
    """``NAME=value`` lines and ``NAME<<DELIMITER`` blocks, as the runner reads them."""
    out: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            value = []
            for body in lines:
                if body == delimiter:
                    break
                value.append(body)
            out[name] = "\n".join(value)
        elif "=" in line:
            name, value_ = line.split("=", 1)
            out[name] = value_
    return out


def comment_event(body: str, command: str = "", merge: str = "") -> dict[str, str]:
    return {
        "inputs.command": command,
        "inputs.merge": merge,
        "github.event.comment.body": body,
        "secrets.ORCHESTRATE_TOKEN || github.token": "ghp_test-token",
        "secrets.ANTHROPIC_API_KEY": "",
        "vars.PHOENIX_COLLECTOR_ENDPOINT": "",
        "vars.PHOENIX_PROJECT_NAME": "",
        "secrets.PHOENIX_API_KEY": "",
    }


def step(step_id: str | None = None, name: str | None = None) -> dict[str, Any]:
    return next(
        s
        for s in steps()
        if (step_id and s.get("id") == step_id) or (name and s.get("name") == name)
    )


# ---------------------------------------------------------------- shape


def test_triggers_and_least_privilege() -> None:
    wf = workflow()
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` as true
    assert on["workflow_dispatch"]["inputs"]["command"]["required"] is True
    assert on["issue_comment"] == {"types": ["created"]}
    assert wf["permissions"] == {}
    job = wf["jobs"]["orchestrate"]
    assert job["permissions"] == {"contents": "write", "pull-requests": "write"}
    condition = " ".join(job["if"].split())
    assert "startsWith(github.event.comment.body, '/orchestrate ')" in condition
    assert '["OWNER", "MEMBER", "COLLABORATOR"]' in condition
    assert "github.event.comment.author_association" in condition


def test_no_expression_is_pasted_into_a_script() -> None:
    """Untrusted text (a comment) reaches the shell only through the environment."""
    for s in steps():
        if "run" in s:
            assert "${{" not in s["run"], s.get("name")


def test_the_uploaded_artefact_is_the_run_directory() -> None:
    upload = step(name="Upload the run directory")
    assert upload["if"] == "always()"
    assert upload["with"]["path"] == "${{ runner.temp }}/orchestrate-runs"
    assert "--orchestrate-run-dir=$RUNNER_TEMP/orchestrate-runs" in step(name="Orchestrate")["run"]


# ---------------------------------------------------------------- the command step


@pytest.mark.parametrize(
    ("body", "inputs", "command", "merge"),
    [
        ("/orchestrate Rename add to plus, post PR\r\nthanks!", {},
         "Rename add to plus, post PR", "false"),
        ("/orchestrate   Rename a to b  ", {}, "Rename a to b", "false"),
        ("", {"command": "Rename add to plus", "merge": "true"}, "Rename add to plus", "true"),
        ("/orchestrate $(touch pwned) `id`; rm -rf ~", {},
         "$(touch pwned) `id`; rm -rf ~", "false"),
    ],
)  # fmt: skip
def test_the_command_step_reads_the_comment_or_the_input(
    tmp_path: Path, body: str, inputs: dict[str, str], command: str, merge: str
) -> None:
    runner = Runner(tmp_path, tmp_path, comment_event(body, **inputs))
    proc = runner.run(step("command"))
    assert proc.returncode == 0, proc.stderr
    assert runner.env["ORCHESTRATE_COMMAND"] == command
    assert runner.env["ORCHESTRATE_MERGE"] == merge
    assert not (tmp_path / "pwned").exists()


def test_an_empty_command_is_refused_with_an_annotation(tmp_path: Path) -> None:
    runner = Runner(tmp_path, tmp_path, comment_event("/orchestrate   "))
    proc = runner.run(step("command"))
    assert proc.returncode == 4
    assert "::error::no command" in proc.stdout
    assert "ORCHESTRATE_COMMAND" not in runner.env


def test_the_install_step_installs_the_plugin_then_the_project(tmp_path: Path) -> None:
    """Run with a stand-in ``python`` that records its arguments (no package index here)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    shim = bin_dir / "python"
    shim.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    shim.chmod(0o755)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "requirements.txt").write_text("numpy\n")
    (workspace / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    runner = Runner(workspace, tmp_path, comment_event(""))
    runner.env["PATH"] = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    proc = runner.run(step("install"))
    assert proc.returncode == 0, proc.stderr
    assert calls.read_text().splitlines() == [
        "-m pip install --upgrade pip",
        "-m pip install pytest-orchestrator",
        "-m pip install -r requirements.txt",
        "-m pip install -e .",
    ]
