"""Sorted lists stay sorted after a rename: ``from m import (a, b, c)`` and ``__all__``.

A rename moves a name inside a list someone kept in order, and a project linting with
ruff's ``I`` (isort) or ``RUF022`` (sorted ``__all__``) goes red on a change that is otherwise
right. rope does not re-sort; here a list that was sorted before the rename (the same list
with the old name in place of the new) is put back in order, by the rule that linter uses,
moving each item's own text so line breaks and trailing commas stay where they were (one
item a line: the line's comment moves with its item). A list that was not sorted is left as it is.

The orders (ruff's defaults):

- isort ``from`` members: constants (``UPPER_CASE``, more than one character) first, then
  classes (a capital first letter), then the rest; within each, case-insensitive natural
  order, then case-sensitive natural order;
- ``RUF022``: the same three groups, natural order within each.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Sequence
from typing import Any

from pytest_orchestrator.phases.execute.spans import line_starts, span

Key = Callable[[str], Any]


def _natural(text: str) -> tuple[tuple[int, int | str], ...]:
    """Digits compare as numbers: ``f2`` before ``f10``."""
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", text) if part
    )


def _kind(name: str) -> int:
    letters = [c for c in name if c.isalpha()]
    if len(name) > 1 and letters and all(c.isupper() for c in letters):
        return 0
    return 1 if name[:1].isupper() else 2


def isort_key(name: str) -> Any:
    return (_kind(name), _natural(name.lower()), _natural(name))


def all_key(name: str) -> Any:
    return (_kind(name), _natural(name))


def _sorted(names: Sequence[str], key: Key) -> bool:
    return list(names) == sorted(names, key=key)


def resort(text: str, old: str, new: str) -> str:
    """``text`` (after renaming ``old`` to ``new``) with each ``from`` import list and
    ``__all__`` that holds ``new`` and was sorted with ``old`` in its place sorted again."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return text
    starts = line_starts(text)
    edits: list[tuple[int, int, str]] = []
    lists: list[tuple[Sequence[ast.AST], list[str], Key]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and len(node.names) > 1:
            lists.append((node.names, [a.name for a in node.names], isort_key))
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        value = node.value if isinstance(node, ast.Assign) else None
        if (
            any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets)
            and isinstance(value, ast.List | ast.Tuple)
            and len(value.elts) > 1
            and all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in value.elts)
        ):
            names = [str(e.value) for e in value.elts if isinstance(e, ast.Constant)]
            lists.append((value.elts, names, all_key))
    for items, names, key in lists:
        if new not in names:
            continue
        before = [old if n == new else n for n in names]
        if not _sorted(before, key) or _sorted(names, key):
            continue
        spans = [span(text, starts, item) for item in items]
        lines = [getattr(item, "lineno", 0) for item in items]
        ends = [text.find("\n", e) % (len(text) + 1) for _, e in spans]
        if len(set(lines)) == len(lines) and all(text[e:].startswith(",") for _, e in spans):
            # one item a line, each with its comma: its comment moves with it
            spans = [(b, end) for (b, _), end in zip(spans, ends, strict=True)]
        pieces = [text[b:e] for b, e in spans]
        order = sorted(range(len(names)), key=lambda i: key(names[i]))
        edits += [(b, e, pieces[j]) for (b, e), j in zip(spans, order, strict=True)]
    for begin, end, piece in sorted(edits, reverse=True):
        text = text[:begin] + piece + text[end:]
    return text
