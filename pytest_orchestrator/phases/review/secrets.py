"""Secrets in the diff: the change must not add a credential, and the check never prints one.

The detectors are the redaction's own (`phases/plan/redact.py`): credential shapes
(`find_secrets`), the values of this process's credential variables (`secret_env_values`) and
secret-named files (`is_secret_name`). Only lines the change adds are scanned, and a value the
base version of the same file already held is not the change's doing. A finding names the
file, the line and the detector; the value itself goes nowhere (not the terminal, PR.md,
run.json nor a replan).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Final

from pytest_orchestrator.model import Check, CheckFinding
from pytest_orchestrator.phases.plan.redact import find_secrets, is_secret_name, secret_env_values
from pytest_orchestrator.repo.git import git

NAME: Final = "secrets"
_HUNK: Final = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@")


def _added_lines(root: Path, base_commit: str) -> dict[str, list[tuple[int, str]]]:
    git("add", "-A", cwd=root)
    diff = git("diff", "--cached", "-U0", "--no-color", "--no-renames", base_commit, cwd=root)
    added: dict[str, list[tuple[int, str]]] = {}
    path, line = "", 0
    for text in diff.splitlines():
        if text.startswith("+++ "):
            path = text[4:].removeprefix("b/")
            added.setdefault(path, [])
        elif m := _HUNK.match(text):
            line = int(m[1])
        elif text.startswith("+") and path and path != "/dev/null":
            added[path].append((line, text[1:]))
            line += 1
    return added


def _base_text(root: Path, base_commit: str, path: str) -> str:
    return git("show", f"{base_commit}:{path}", cwd=root, check=False)


def scan(root: Path, base_commit: str) -> list[CheckFinding]:
    """Every credential the change adds, by file, line and detector (never the value)."""
    known = secret_env_values(os.environ)
    found: list[CheckFinding] = []
    for path, lines in _added_lines(root, base_commit).items():
        if path == "/dev/null":
            continue
        base = None
        if is_secret_name(path):
            found.append(
                CheckFinding(
                    tool=NAME,
                    rule="secret-file",
                    path=path,
                    message="a file named like a credential store is added or changed",
                )
            )
        for number, text in lines:
            hits = [(kind, value) for kind, value in find_secrets(text)]
            hits += [("env-value", v) for v in known if v in text]
            for kind, value in hits:
                if base is None:
                    base = _base_text(root, base_commit, path)
                if value in base:
                    continue  # already there before the change
                found.append(
                    CheckFinding(
                        tool=NAME,
                        rule=kind,
                        path=path,
                        line=number,
                        message=f"the change adds a credential ({kind}); the value is withheld",
                    )
                )
    return found


def check(root: Path, base_commit: str) -> Check:
    found = scan(root, base_commit)
    if found:
        where = ", ".join(f"{f.path}:{f.line}" if f.line else f.path for f in found[:5])
        return Check(
            name=NAME,
            ok=False,
            detail=f"{len(found)} credential(s) added: {where}; remove them, read them from "
            "the environment instead",
            findings=found,
            attempt_findings=len(found),
            base_findings=0,
        )
    return Check(
        name=NAME,
        ok=True,
        detail="no credential in the added lines",
        attempt_findings=0,
        base_findings=0,
    )
