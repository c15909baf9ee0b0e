"""Baseline parity for checks: which of an attempt's findings the change added.

A finding is compared by tool, rule and location. The location of a base finding is mapped
through the diff (``git diff -U0 -M``): a line outside every hunk moves by the hunks above
it; a line inside a hunk maps to that hunk's new lines, where a finding of the same tool and
rule counts as the same one (an edited line may keep its old problem). Each base finding
answers for at most one attempt finding; every attempt finding left over is new.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from pytest_orchestrator.model import CheckFinding
from pytest_orchestrator.phases.plan.redact import redact
from pytest_orchestrator.repo.git import git

MESSAGE_LIMIT: Final = 300
"""Characters of one finding's message kept (a tool may print a whole file in one)."""

_HUNK: Final = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_LOCATED: Final = re.compile(r"^(?P<path>[^\s:][^:]*):(?P<line>\d+):(?:\d+:)?\s*(?P<msg>.+)$")


def finding(tool: str, rule: str, path: str, line: int, message: str) -> CheckFinding:
    """A finding with its path made POSIX, its message trimmed and redacted (a tool may echo
    the line it complains about, credential and all)."""
    return CheckFinding(
        tool=tool, rule=rule, path=path.removeprefix("./"), line=line, message=_clean(message)
    )


def _clean(message: str) -> str:
    message = redact(" ".join(message.split()))
    if len(message) > MESSAGE_LIMIT:
        message = message[: MESSAGE_LIMIT - 1] + "…"
    return message


class Collector:
    """One tool's findings from one report, as `finding` makes them, with each distinct path
    made relative to ``root`` and each distinct message cleaned once: a linter repeats both
    across thousands of findings (ruff on pygments: 3,538 findings in 363 files with 118
    distinct messages), and resolving a path or redacting a message is the costly part."""

    def __init__(self, tool: str, root: Path) -> None:
        self.tool, self.root = tool, root
        self._paths: dict[str, str] = {}
        self._messages: dict[str, str] = {}

    def path(self, path: str) -> str:
        """``relative(path, root)``, remembered."""
        if path not in self._paths:
            self._paths[path] = relative(path, self.root)
        return self._paths[path]

    def __call__(self, rule: str, path: str, line: int, message: str) -> CheckFinding:
        if message not in self._messages:
            self._messages[message] = _clean(message)
        return CheckFinding(
            tool=self.tool,
            rule=rule,
            path=self.path(path).removeprefix("./"),
            line=line,
            message=self._messages[message],
        )


def relative(path: str, root: Path) -> str:
    """``path`` relative to ``root`` when it lies inside it (tools print absolute paths)."""
    p = Path(path)
    if p.is_absolute():
        try:
            return p.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            return path
    return p.as_posix()


def parse_located(tool: str, output: str, root: Path, rule: str = "") -> list[CheckFinding]:
    """Findings from ``path:line[:col]: message`` lines, the format most tools share (flake8,
    pylint's parseable output, a project's own scripts)."""
    found, make = [], Collector(tool, root)
    for line in output.splitlines():
        m = _LOCATED.match(line.strip())
        if m and (root / make.path(m["path"])).exists():
            msg = m["msg"]
            code = rule or (msg.split()[0] if msg.split() and msg.split()[0].isalnum() else tool)
            found.append(make(code, m["path"], int(m["line"]), msg))
    return found


@dataclass
class _Hunk:
    old_start: int
    old_len: int
    new_start: int
    new_len: int


@dataclass
class DiffMap:
    """How base locations move in the attempt: renamed files and each file's hunks."""

    renames: dict[str, str] = field(default_factory=dict)
    hunks: dict[str, list[_Hunk]] = field(default_factory=dict)
    """By base path."""

    def place(self, path: str, line: int) -> tuple[str, int, int]:
        """The attempt's path and line range ``[lo, hi]`` of base location ``path:line``."""
        new_path = self.renames.get(path, path)
        shift = 0
        for h in self.hunks.get(path, []):
            if line < h.old_start or (h.old_len == 0 and line <= h.old_start):
                break
            if h.old_len and line < h.old_start + h.old_len:
                return new_path, h.new_start, h.new_start + max(h.new_len - 1, 0)
            # the first line after the hunk, on each side (a zero-length side names the line
            # before the hunk)
            old_end = h.old_start + (h.old_len or 1)
            new_end = h.new_start + (h.new_len or 1)
            shift = new_end - old_end
        return new_path, line + shift, line + shift


def diff_map(root: Path, base_commit: str) -> DiffMap:
    """The attempt's diff against ``base_commit`` (everything in the tree, new files too)."""
    git("add", "-A", cwd=root)
    text = git("diff", "--cached", "-U0", "-M", "--no-color", base_commit, cwd=root)
    result = DiffMap()
    old = new = ""
    for line in text.splitlines():
        if line.startswith("rename from "):
            old = line.removeprefix("rename from ")
        elif line.startswith("rename to "):  # a pure rename has no ---/+++ lines
            result.renames[old] = line.removeprefix("rename to ")
        elif line.startswith("--- "):
            old = line[4:].removeprefix("a/")
        elif line.startswith("+++ "):
            new = line[4:].removeprefix("b/")
            if old != "/dev/null" and new != "/dev/null" and old != new:
                result.renames[old] = new
        elif m := _HUNK.match(line):
            o_len = int(m[2]) if m[2] is not None else 1
            n_len = int(m[4]) if m[4] is not None else 1
            hunk = _Hunk(int(m[1]), o_len, int(m[3]), n_len)
            result.hunks.setdefault(old, []).append(hunk)
    return result


def new_findings(
    base: list[CheckFinding], attempt: list[CheckFinding], moves: DiffMap
) -> list[CheckFinding]:
    """The attempt's findings that no base finding accounts for (see the module's doc)."""
    spare: dict[tuple[str, str, str], list[tuple[int, int]]] = defaultdict(list)
    for f in base:
        path, lo, hi = moves.place(f.path, f.line)
        spare[(f.tool, f.rule, path)].append((lo, hi))
    added = []
    for f in attempt:
        ranges = spare.get((f.tool, f.rule, f.path), [])
        exact = next((r for r in ranges if r == (f.line, f.line)), None)
        match = exact or next((r for r in ranges if r[0] <= f.line <= r[1]), None)
        if match is None and f.line == 0:
            match = ranges[0] if ranges else None  # a file-level finding: any of that file's
        if match is None:
            added.append(f)
        else:
            ranges.remove(match)
    return added
