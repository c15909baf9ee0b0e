"""Imports of a name that moved to another module, in every form Python writes them.

rope updates the module-level ``from old import name`` it resolves, but not an import inside
a function (``def test(): from tabulate import simple_separated_format``), an aliased one,
or ``old.name`` through a module imported under another name. Such an import keeps working
only while the old module still happens to hold the name, and fails the moment it does not:
tabulate's regression tests went red at the gate for exactly that. So after a move every
remaining reference to ``old.name`` is found here, at any nesting, and rewritten:

- ``from old import name [as x]`` (absolute or relative): the alias leaves the list (the
  statement goes when it was alone) and ``from new import name [as x]`` follows it, at the
  same indentation;
- ``import old [as m]`` / ``from parent import old_leaf [as m]`` used as ``m.name``: the
  use becomes ``new.name`` and ``import new`` follows the binding; a binding left unused goes.

`stale` reports what is left (the review check of a move reads it).
"""

from __future__ import annotations

import ast
import doctest
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pytest_orchestrator.phases.execute.spans import line_starts, span
from pytest_orchestrator.repo.files import atomic_write


@dataclass(frozen=True)
class Stale:
    path: str
    line: int
    text: str


def absolute(importer: str, node: ast.ImportFrom) -> str:
    """The module a ``from … import`` names, relative levels resolved against the dotted
    name ``importer`` of the importing module (``pkg`` for ``pkg/__init__.py``)."""
    if not node.level:
        return node.module or ""
    parts = importer.split(".")
    drop = node.level - 1 if importer.endswith(".__init__") else node.level
    base = parts[: len(parts) - drop] if drop else parts
    base = [p for p in base if p != "__init__"]
    return ".".join([*base, *([node.module] if node.module else [])])


def _importer(module: str, rel: str) -> str:
    return module + ".__init__" if rel.endswith("__init__.py") else module


def _bindings(tree: ast.Module, importer: str, old: str) -> dict[str, list[ast.stmt]]:
    """Each expression text that names the module ``old`` (``old``, an alias, a leaf
    imported from its parent) -> the statements binding it, in source order."""
    out: dict[str, list[ast.stmt]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == old:
                    out.setdefault(alias.asname or old, []).append(node)
        elif isinstance(node, ast.ImportFrom):
            parent = absolute(importer, node)
            for alias in node.names:
                if f"{parent}.{alias.name}" == old:
                    out.setdefault(alias.asname or alias.name, []).append(node)
    return {k: sorted(v, key=lambda n: n.lineno) for k, v in out.items()}


def _binding_of(statements: list[ast.stmt], line: int) -> ast.stmt:
    """The binding a use on ``line`` sees: the last one above it (a function's own import
    serves the lines after it), else the first."""
    above = [s for s in statements if s.lineno <= line]
    return above[-1] if above else statements[0]


def dotted_name(node: ast.expr) -> str:
    """``a.b.c`` for a chain of names and attributes; "" for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = dotted_name(node.value)
        return f"{inner}.{node.attr}" if inner else ""
    return ""


def _alias(alias: ast.alias) -> str:
    return f"{alias.name} as {alias.asname}" if alias.asname else alias.name


def _from(module: str, aliases: list[ast.alias], multiline: bool, indent: str) -> str:
    if multiline:
        inner = "".join(f"{indent}    {_alias(a)},\n" for a in aliases)
        return f"from {module} import (\n{inner}{indent})"
    return f"from {module} import {', '.join(_alias(a) for a in aliases)}"


def _edits(
    text: str, tree: ast.Module, importer: str, old: str, new: str, name: str
) -> list[tuple[int, int, str]]:
    starts = line_starts(text)
    edits: list[tuple[int, int, str]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or absolute(importer, node) != old:
            continue
        moved = [a for a in node.names if a.name == name]
        if not moved:
            continue
        begin, end = span(text, starts, node)
        indent = text[starts[node.lineno - 1] : begin]
        kept = [a for a in node.names if a.name != name]
        lines = [_from(new, [a], False, indent) for a in moved]
        if kept:
            source = "." * node.level + (node.module or "")
            multiline = len(kept) > 1 and node.end_lineno != node.lineno
            lines.insert(0, _from(source, kept, multiline, indent))
        edits.append((begin, end, f"\n{indent}".join(lines)))
    bindings = _bindings(tree, importer, old)
    other_uses: set[int] = set()
    moved_uses: dict[int, int] = {}
    uses_of: dict[int, tuple[ast.stmt, str]] = {}
    for node in ast.walk(tree):
        key = dotted_name(node.value) if isinstance(node, ast.Attribute) else ""
        if key in bindings:
            assert isinstance(node, ast.Attribute)
            statement = _binding_of(bindings[key], node.lineno)
            uses_of[id(statement)] = (statement, key)
            if node.attr != name:
                other_uses.add(id(statement))
                continue
            moved_uses[id(statement)] = moved_uses.get(id(statement), 0) + 1
            edits.append((*span(text, starts, node), f"{new}.{name}"))
    statements: dict[int, tuple[ast.stmt, list[str]]] = {}
    for sid, count in moved_uses.items():
        statement, key = uses_of[sid]
        entry = statements.setdefault(sid, (statement, []))
        names = [
            n
            for n in ast.walk(tree)
            if isinstance(n, ast.Name)
            and n.id == key
            and _binding_of(bindings[key], n.lineno) is statement
        ]
        if sid not in other_uses and ("." in key or len(names) <= count):
            entry[1].append(key)
    present = any(  # at module level: a function's own import serves only that function
        isinstance(n, ast.Import) and any(a.name == new and not a.asname for a in n.names)
        for n in tree.body
    )
    for statement, keys in statements.values():
        begin, end = span(text, starts, statement)
        indent = text[starts[statement.lineno - 1] : begin]
        lines = [_without(statement, keys)] + ([] if present else [f"import {new}"])
        lines = [line for line in lines if line]
        present = present or not indent
        if not lines and text[end : end + 1] == "\n" and not indent.strip():
            begin, end = starts[statement.lineno - 1], end + 1  # the whole line goes
        edits.append((begin, end, f"\n{indent}".join(lines)))
    return edits


def _without(statement: ast.stmt, keys: list[str]) -> str:
    """``statement`` without the aliases binding ``keys``, "" when nothing is left."""
    assert isinstance(statement, ast.Import | ast.ImportFrom)
    kept = [a for a in statement.names if (a.asname or a.name) not in keys]
    if not kept:
        return ""
    if isinstance(statement, ast.Import):
        return f"import {', '.join(_alias(a) for a in kept)}"
    source = "." * statement.level + (statement.module or "")
    return _from(source, kept, False, "")


def _apply(text: str, edits: list[tuple[int, int, str]]) -> str:
    """Apply the edits, last first (they never overlap: attribute uses are not inside
    import statements, and each statement is rewritten once)."""
    for begin, end, new in sorted(edits, reverse=True):
        text = text[:begin] + new + text[end:]
    return text


def follow(
    root: Path, files: list[str], modules: dict[str, str], old: str, new: str, name: str
) -> list[str]:
    """Rewrite every import of ``old.name`` in ``files`` to ``new.name``; ``modules`` maps
    each file to its dotted module name. Returns the files changed."""
    changed = []
    for rel in files:
        path = root / rel
        try:
            text = path.read_text(encoding="utf-8")
            tree = ast.parse(text)
        except (OSError, UnicodeDecodeError, SyntaxError):
            continue
        edits = _edits(text, tree, _importer(modules[rel], rel), old, new, name)
        if edits:
            result = _apply(text, edits)
            if result != text:
                atomic_write(path, result)
                changed.append(rel)
    return changed


def stale(
    root: Path, files: list[str], modules: dict[str, str], old: str, name: str
) -> list[Stale]:
    """The references to ``old.name`` left in ``files``: imports from ``old`` of ``name`` and
    ``m.name`` uses through a binding of ``old``."""
    out = []
    for rel in files:
        try:
            text = (root / rel).read_text(encoding="utf-8")
            tree = ast.parse(text)
        except (OSError, UnicodeDecodeError, SyntaxError):
            continue
        importer = _importer(modules[rel], rel)
        bindings = _bindings(tree, importer, old)
        lines = text.splitlines()
        for node in ast.walk(tree):
            hit = (
                isinstance(node, ast.ImportFrom)
                and absolute(importer, node) == old
                and any(a.name == name for a in node.names)
            ) or (
                isinstance(node, ast.Attribute)
                and node.attr == name
                and dotted_name(node.value) in bindings
            )
            if hit:
                line = int(getattr(node, "lineno", 1))
                out.append(Stale(rel, line, lines[line - 1].strip()[:120]))
    return sorted(out, key=lambda s: (s.path, s.line))


def drop_from_all(text: str, name: str) -> str:
    """``text`` without ``"name"`` in its module-level ``__all__`` list or tuple (a name a
    module no longer binds cannot be exported: ``from m import *`` would fail)."""
    tree = ast.parse(text)
    starts = line_starts(text)
    for node in tree.body:
        if not (
            isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign)
            and "__all__" in {dotted_name(t) for t in _targets(node)}
            and isinstance(node.value, ast.List | ast.Tuple)
        ):
            continue
        elements = node.value.elts
        for i, element in enumerate(elements):
            if isinstance(element, ast.Constant) and element.value == name:
                begin, end = span(text, starts, element)
                if i + 1 < len(elements):
                    end = span(text, starts, elements[i + 1])[0]
                else:
                    if i > 0:
                        begin = span(text, starts, elements[i - 1])[1]
                    if text[end : end + 1] == ",":
                        end += 1
                        begin += 1 if i > 0 and text[begin : begin + 1] == "," else 0
                return text[:begin] + text[end:]
    return text


def doctest_names(tree: ast.Module) -> set[str]:
    """Every name the module's doctests read."""
    names: set[str] = set()
    parser = doctest.DocTestParser()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            doc = ast.get_docstring(node, clean=False) or ""
            for example in parser.get_examples(doc) if ">>>" in doc else []:
                try:
                    names |= {
                        n.id for n in ast.walk(ast.parse(example.source)) if isinstance(n, ast.Name)
                    }
                except SyntaxError:
                    continue
    return names


NOQA_DOCTESTS: Final = "  # noqa: F401 - read by the doctests"


def drop_unused(text: str) -> str:
    """``text`` without the module-level imported names it never reads (code or doctests):
    rope's move copies imports the moved code does not need (``__all__`` included). An
    import only the doctests read stays, marked for linters (they do not read doctests, and
    would report it unused where the base had none)."""
    tree = ast.parse(text)
    in_code = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    in_doctests = doctest_names(tree)
    starts = line_starts(text)
    edits = []
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            keys = [a.asname or a.name for a in node.names]
            unused = [k for k in keys if k.split(".")[0] not in in_code | in_doctests]
            doctest_only = [k for k in keys if k.split(".")[0] in in_doctests - in_code]
            begin, end = span(text, starts, node)
            marked = NOQA_DOCTESTS.strip() in text[end : text.find("\n", end)]
            if not unused and (not doctest_only or marked):
                continue
            kept = _without(node, unused)
            if kept and doctest_only and not marked:
                kept += NOQA_DOCTESTS
            if not kept and text[end : end + 1] == "\n":
                end += 1
            edits.append((begin, end, kept))
    return _apply(text, edits).lstrip("\n")  # no blank lines where the imports were


def _targets(node: ast.Assign | ast.AugAssign | ast.AnnAssign) -> list[ast.expr]:
    return list(node.targets) if isinstance(node, ast.Assign) else [node.target]
