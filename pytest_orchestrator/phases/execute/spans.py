"""Where an ``ast`` node is in its source text, as character offsets.

``ast`` gives lines (1-based) and UTF-8 byte columns; an edit of the text needs character
offsets. `line_starts` is computed once per text and `span` converts a node with it.
"""

from __future__ import annotations

import ast


def line_starts(text: str) -> list[int]:
    """The offset of each line's first character, and the text's length last."""
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    return starts


def span(text: str, starts: list[int], node: ast.AST) -> tuple[int, int]:
    """``node``'s ``[begin, end)`` character offsets in ``text`` (``starts`` its line starts)."""

    def at(line: int, col: int) -> int:
        raw = text[starts[line - 1] : starts[line] if line < len(starts) else len(text)]
        return starts[line - 1] + len(raw.encode()[:col].decode(errors="ignore"))

    lineno: int = getattr(node, "lineno")  # noqa: B009 - statements and expressions only
    end_line = getattr(node, "end_lineno", None) or lineno
    end_col = getattr(node, "end_col_offset", None) or 0
    return at(lineno, getattr(node, "col_offset")), at(end_line, end_col)  # noqa: B009
