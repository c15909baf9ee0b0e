"""Model-written edits, checked in memory before they become plan steps.

A model returns edits as search/replace blocks against the exact current text, or as
whole-definition replacements (``symbol`` + ``replace``). `apply_edits` applies all the edits
of one file to its text in memory — all or nothing, so a file is changed atomically or not at
all — and reports every edit that does not apply with the nearest match, so the model can be
asked again. A Python file must still parse afterwards.

The result becomes ONE ``replace_block`` step per file (`file_change`): the smallest run of
whole lines that covers every change, widened until it occurs exactly once in the file, so
the executor's own exact-match check passes and a file is rewritten in one operation.
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pytest_orchestrator.phases.plan.prompting import locate_symbol, nearest_match
from pytest_orchestrator.phases.plan.redact import redact_source

__all__ = [
    "EditProblems",
    "apply_edits",
    "creation_patch",
    "file_change",
    "modification_patch",
    "occurrences",
]


def occurrences(text: str, search: str, limit: int = 2) -> int:
    """How often ``search`` occurs in ``text``, overlaps included, counting up to ``limit``.

    ``str.count`` skips overlapping matches: ``"b\\nb\\n"`` "occurs once" in ``"b\\nb\\nb\\n"``
    although ``str.replace`` would edit a different place than the one meant.
    """
    found, at = 0, text.find(search)
    while at != -1 and found < limit:
        found += 1
        at = text.find(search, at + 1)
    return found


class EditProblems(Exception):
    """Edits that did not apply; ``problems`` are messages written for the model."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def apply_edits(path: str, text: str, edits: Sequence[dict[str, Any]]) -> str:
    """``text`` with every edit applied in order; raises `EditProblems` if any does not apply."""
    problems: list[str] = []
    current = text
    if not edits:
        raise EditProblems(["no edits were returned"])
    for number, edit in enumerate(edits, 1):
        replace = edit.get("replace")
        if not isinstance(replace, str):
            problems.append(f"edit {number}: 'replace' must be a string")
            continue
        symbol, search = edit.get("symbol"), edit.get("search")
        if isinstance(symbol, str) and symbol:
            span = locate_symbol(current, symbol)
            if span is None:
                problems.append(f"edit {number}: no function or class {symbol!r} in {path}")
                continue
            lines = current.splitlines(keepends=True)
            start, end = span
            new = replace if replace.endswith("\n") or not replace else replace + "\n"
            current = "".join([*lines[: start - 1], new, *lines[end:]])
        elif isinstance(search, str) and search:
            count = occurrences(current, search)
            if count == 1:
                current = current.replace(search, replace, 1)
            elif count == 0:
                line, ratio, near = nearest_match(current, search)
                near = redact_source(path, near)  # it goes back to the model
                problems.append(
                    f"edit {number}: search text not found in {path}; nearest match at line "
                    f"{line} ({ratio:.0%} similar):\n{near.rstrip()}"
                )
            else:
                problems.append(
                    f"edit {number}: search text occurs more than once in {path}; include more "
                    "surrounding lines so it is unique"
                )
        else:
            problems.append(f"edit {number}: give either 'search' (exact text) or 'symbol'")
    if not problems and path.endswith(".py"):
        try:
            ast.parse(current)
        except SyntaxError as exc:
            problems.append(
                f"the edited {path} does not parse: line {exc.lineno}: {exc.msg}; "
                "return the edits again, complete and correctly indented"
            )
    if problems:
        raise EditProblems(problems)
    if current == text:
        raise EditProblems([f"the edits leave {path} unchanged"])
    return current


@dataclass(frozen=True)
class FileChange:
    """One exact-text replacement that turns a file's old text into its new text."""

    search: str
    replace: str


def file_change(old: str, new: str) -> FileChange:
    """The smallest whole-line region of ``old`` (unique in it) whose replacement gives ``new``."""
    a = old.splitlines(keepends=True)
    b = new.splitlines(keepends=True)
    prefix = 0
    while prefix < min(len(a), len(b)) and a[prefix] == b[prefix]:
        prefix += 1
    suffix = 0
    while (
        suffix < min(len(a), len(b)) - prefix and a[len(a) - 1 - suffix] == b[len(b) - 1 - suffix]
    ):
        suffix += 1
    start, end_a, end_b = prefix, len(a) - suffix, len(b) - suffix
    while True:
        # a[start:prefix] == b[start:prefix] and a[end_a:] == b[end_b:], so widening both
        # sides by the same lines keeps the replacement exact.
        search = "".join(a[start:end_a])
        if search and occurrences(old, search) == 1:  # then it is found where we cut it
            return FileChange(search, "".join(b[start:end_b]))
        if start == 0 and end_a == len(a):
            return FileChange(old, new)
        if start > 0:
            start -= 1
        if end_a < len(a):
            end_a += 1
            end_b += 1


def creation_patch(path: str, text: str) -> str:
    """A unified diff (``git apply`` format) creating ``path`` with ``text``."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    body = difflib.unified_diff([], lines, fromfile="/dev/null", tofile=f"b/{path}", n=0)
    return f"diff --git a/{path} b/{path}\nnew file mode 100644\n" + "".join(body)


def modification_patch(path: str, old: str, new: str) -> str:
    """A unified diff (``git apply`` format) turning ``old`` into ``new`` (e.g. an empty file,
    which no exact-text replacement can address)."""
    a = old.splitlines(keepends=True)
    b = new.splitlines(keepends=True)
    for lines in (a, b):
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
    body = difflib.unified_diff(a, b, fromfile=f"a/{path}", tofile=f"b/{path}", n=1)
    return f"diff --git a/{path} b/{path}\n" + "".join(body)
