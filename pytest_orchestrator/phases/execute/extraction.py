"""Extract a range of statements into a new function, with exactly the right data flow.

rope's extract works out parameters and return values with its own scope analysis, which
takes a comprehension's loop variable for an assignment of the enclosing function: on
cachetools' ``typedkey`` it returned ``v`` (a generator variable) instead of ``key``. Here the
flow is Python's own:

- **parameters**: the enclosing function's locals the range reads and that were bound before
  it (in their order of first use);
- **return values**: the names the range binds that are read after it — later in the
  function, or anywhere in an enclosing loop (the next iteration reads them);
- **refused**, with the reason: a ``return``, ``yield`` or ``await`` in the range, a
  ``break``/``continue`` whose loop is outside it, ``global``/``nonlocal``, a range that is not
  a run of whole statements of one block.

Names bound only inside a nested scope (a comprehension's ``for``, a lambda's parameters, a
nested function's locals) belong to that scope and are neither.
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from pytest_orchestrator.errors import EditError

_SCOPES = ast.Lambda | ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp
_DEFS = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
Function = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True)
class Extraction:
    text: str
    """The new module text."""
    params: list[str]
    returns: list[str]


def _reads(nodes: Sequence[ast.AST]) -> list[str]:
    """Names read, in source order, including free names read inside nested scopes (a
    comprehension reading ``args``), but not the names those scopes bind themselves."""
    return [name for _, _, name in _read_positions(nodes)]


def _read_positions(nodes: Sequence[ast.AST]) -> list[tuple[int, int, str]]:
    out: list[tuple[int, int, str]] = []

    def visit(node: ast.AST, bound: frozenset[str]) -> None:
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            if node.id not in bound:
                out.append((node.lineno, node.col_offset, node.id))
        elif (
            isinstance(node, ast.AugAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id not in bound
        ):
            out.append((node.lineno, node.col_offset, node.target.id))
        if isinstance(node, _SCOPES | ast.FunctionDef | ast.AsyncFunctionDef):
            inner = set(bound)
            if isinstance(node, ast.Lambda | ast.FunctionDef | ast.AsyncFunctionDef):
                a = node.args
                inner |= {x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs]}
                inner |= {x.arg for x in (a.vararg, a.kwarg) if x is not None}
                if not isinstance(node, ast.Lambda):
                    inner |= set(_binds(node.body))
                    for d in [*node.decorator_list, *a.defaults, *a.kw_defaults]:
                        if d is not None:
                            visit(d, bound)
                    for child in node.body:
                        visit(child, frozenset(inner))
                    return
            else:
                for gen in node.generators:
                    inner |= {n.id for n in ast.walk(gen.target) if isinstance(n, ast.Name)}
            for sub in ast.iter_child_nodes(node):
                visit(sub, frozenset(inner))
            return
        for sub in ast.iter_child_nodes(node):
            visit(sub, bound)

    for node in nodes:
        visit(node, frozenset())
    return sorted(out)


def _binds(nodes: Sequence[ast.AST]) -> list[str]:
    """Names bound in the scope these statements run in (not inside nested scopes), in
    source order."""
    seen: list[str] = []
    for _, _, name in _bindings(nodes):
        if name not in seen:
            seen.append(name)
    return seen


def _bindings(nodes: Sequence[ast.AST]) -> list[tuple[int, int, str]]:
    """(line, column, name) of every binding `_binds` reports, in source order."""
    out: list[tuple[int, int, str]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            out.append((node.lineno, node.col_offset, node.id))
        elif isinstance(node, _DEFS):
            out.append((node.lineno, node.col_offset, node.name))
            for d in node.decorator_list:
                visit(d)
            return
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for a in node.names:
                name = (a.asname or a.name).split(".")[0]
                out.append((node.lineno, node.col_offset, name))
        elif isinstance(node, ast.ExceptHandler) and node.name:
            out.append((node.lineno, node.col_offset, node.name))
        elif isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            if node.value is not None:  # the value is computed before the names are bound
                visit(node.value)
            at = (node.end_lineno or node.lineno, node.end_col_offset or 0)
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for n in ast.walk(target):
                    if isinstance(n, ast.Name):
                        out.append((*at, n.id))
                    elif isinstance(n, ast.expr) and not isinstance(n, ast.Name):
                        for sub in ast.iter_child_nodes(n):
                            if not isinstance(sub, ast.Name | ast.Tuple | ast.List | ast.Starred):
                                visit(sub)
            return
        elif isinstance(node, ast.NamedExpr):
            visit(node.value)
            out.append((node.lineno, node.col_offset, node.target.id))
            return
        if isinstance(node, _SCOPES):
            for gen in getattr(node, "generators", [])[:1]:
                visit(gen.iter)  # only the first iterable runs in the enclosing scope
            return
        for child in ast.iter_child_nodes(node):
            visit(child)

    for node in nodes:
        visit(node)
    return sorted(out)


def _refusal(statements: list[ast.stmt]) -> str:
    """Why the range cannot become a function of its own, or ""."""

    def visit(node: ast.AST, in_loop: bool) -> str:
        if isinstance(node, _DEFS | ast.Lambda):
            return ""
        if isinstance(node, ast.Return):
            return "a `return` (it would return from the new function, not from the caller)"
        if isinstance(node, ast.Yield | ast.YieldFrom):
            return "a `yield` (the new function would be a generator)"
        if isinstance(node, ast.Await):
            return "an `await`"
        if isinstance(node, ast.Break | ast.Continue) and not in_loop:
            word = "break" if isinstance(node, ast.Break) else "continue"
            return f"a `{word}` whose loop is outside the lines"
        if isinstance(node, ast.Global | ast.Nonlocal):
            return "a `global`/`nonlocal` declaration"
        loop = isinstance(node, ast.For | ast.AsyncFor | ast.While)
        for field, value in ast.iter_fields(node):
            children = value if isinstance(value, list) else [value]
            for child in children:
                if isinstance(child, ast.AST):
                    inside = in_loop or (loop and field == "body")
                    found = visit(child, inside)
                    if found:
                        return found
        return ""

    for statement in statements:
        found = visit(statement, False)
        if found:
            return found
    return ""


def _block(
    body: list[ast.stmt], start: int, end: int, chain: list[ast.AST]
) -> tuple[list[ast.stmt], list[ast.AST]] | None:
    """The statements of one block that exactly cover lines ``start``..``end``, with the
    chain of enclosing nodes; None when the range cuts a statement or spans blocks."""
    covered = [s for s in body if s.lineno >= start and (s.end_lineno or s.lineno) <= end]
    if covered and covered[0].lineno == start and (covered[-1].end_lineno or 0) >= end:
        first, last = body.index(covered[0]), body.index(covered[-1])
        if body[first : last + 1] == covered:
            return covered, chain
    for s in body:
        if s.lineno <= start and end <= (s.end_lineno or s.lineno):
            for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                inner = getattr(s, field, None)
                if not isinstance(inner, list) or not inner:
                    continue
                blocks = [h.body for h in inner] if field in ("handlers", "cases") else [inner]
                for block in blocks:
                    found = _block(block, start, end, [*chain, s])
                    if found is not None:
                        return found
    return None


def extract(text: str, path: str, start: int, end: int, new_name: str) -> Extraction:
    """``text`` with lines ``start``..``end`` (whole statements of one block inside a
    function) moved into ``new_name``: a module-level function after the enclosing
    definition, or a method beside the enclosing method when the lines use ``self``/``cls``."""
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    # the first and last lines may be blank or comments: the statements decide
    while start < end and not lines[start - 1].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    found = _block(tree.body, start, end, [])
    if found is None:
        raise EditError(
            f"lines {start}-{end} of {path} are not a run of whole statements of one block: "
            "choose lines that start and end with complete statements"
        )
    statements, chain = found
    functions = [n for n in chain if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    if not functions:
        raise EditError(f"lines {start}-{end} of {path} are not inside a function")
    function: Function = functions[-1]
    why = _refusal(statements)
    if why:
        raise EditError(
            f"lines {start}-{end} of {path} contain {why}: that cannot be expressed by a "
            "function call; choose lines without it"
        )
    a = function.args
    params_of = [x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs]]
    params_of += [x.arg for x in (a.vararg, a.kwarg) if x is not None]
    locals_ = set(params_of) | set(_binds(function.body))
    bound_before = set(params_of) | {n for line, _, n in _bindings(function.body) if line < start}
    reads = [n for n in _reads(list(statements)) if n in locals_]
    params = [n for i, n in enumerate(reads) if n in bound_before and n not in reads[:i]]
    assigned = _binds(list(statements))
    later = _reads([s for s in _statements(function.body) if s.lineno > end])
    loops = [n for n in chain if isinstance(n, ast.For | ast.AsyncFor | ast.While)]
    loops = [n for n in loops if n.lineno > function.lineno]
    if loops:  # the next iteration reads what this one bound, outside the lines or before
        outside = _read_positions([loops[0]])  # binding them inside
        later += [n for line, _, n in outside if not start <= line <= end]
        first_bound: dict[str, tuple[int, int]] = {}
        for line, col, n in _bindings(list(statements)):
            first_bound.setdefault(n, (line, col))
        later += [
            n
            for line, col, n in _read_positions(list(statements))
            if n in first_bound and (line, col) < first_bound[n]
        ]
    returns = [n for n in assigned if n in later]
    simple = ast.Assign | ast.AugAssign | ast.AnnAssign | ast.Import | ast.ImportFrom | _DEFS
    always = set(_binds([s for s in statements if isinstance(s, simple)]))
    # a name the lines bind only on some paths keeps its earlier value on the others
    params += [n for n in returns if n not in always and n in bound_before and n not in params]
    owner = chain[chain.index(function) - 1] if chain.index(function) else None
    method = isinstance(owner, ast.ClassDef) and bool(params_of) and params_of[0] in params
    scope = owner.body if isinstance(owner, ast.ClassDef) else tree.body
    if any(isinstance(s, _DEFS) and s.name == new_name for s in scope):
        raise EditError(f"{new_name!r} is already defined there: choose another name")
    indent = lines[statements[0].lineno - 1][: statements[0].col_offset]
    body = textwrap.dedent("".join(lines[statements[0].lineno - 1 : end]))
    def_indent = " " * function.col_offset if method else ""
    inner = def_indent + "    "
    signature, returned = _annotations(text, function, params, returns, method)
    new_def = f"{def_indent}def {new_name}({signature}){returned}:\n"
    new_def += textwrap.indent(body, inner)
    if returns:
        new_def += f"{inner}return {', '.join(returns)}\n"
    callee = f"{params[0]}.{new_name}" if method else new_name
    args = ", ".join(params[1:] if method else params)
    call = f"{callee}({args})"
    if returns:
        call = f"{', '.join(returns)} = {call}"
    anchor = function if method else _top(tree, function)
    after = anchor.end_lineno or anchor.lineno
    gap = "\n" if method else "\n\n"
    out = [*lines[: statements[0].lineno - 1], f"{indent}{call}\n", *lines[end:after]]
    out += [gap, new_def] + (["\n" if method else "\n\n"] if lines[after:] else [])
    rest = lines[after:]
    while rest and not rest[0].strip():
        rest = rest[1:]
    return Extraction("".join(out + rest), params, returns)


def _annotations(
    text: str, function: Function, params: list[str], returns: list[str], method: bool
) -> tuple[str, str]:
    """The new function's parameter list and return annotation. In annotated code (the
    enclosing function is fully annotated: a project checked with ``mypy --strict`` would
    reject an unannotated function) each parameter takes the enclosing function's
    annotation of the same name, and the return is ``None`` or the one returned
    parameter's type; when a type is not known this way, nothing is annotated."""
    a = function.args
    declared = {x.arg: x.annotation for x in [*a.posonlyargs, *a.args, *a.kwonlyargs]}
    typed = function.returns is not None and all(
        n is not None for name, n in declared.items() if name not in ("self", "cls")
    )
    plain = (", ".join(params), "")
    if not typed:
        return plain
    notes = {k: ast.get_source_segment(text, v) for k, v in declared.items() if v is not None}
    parts = []
    for i, name in enumerate(params):
        if method and i == 0:
            parts.append(name)
        elif notes.get(name):
            parts.append(f"{name}: {notes[name]}")
        else:
            return plain
    if not returns:
        return ", ".join(parts), " -> None"
    if len(returns) == 1 and notes.get(returns[0]):
        return ", ".join(parts), f" -> {notes[returns[0]]}"
    return plain


def _statements(body: list[ast.stmt]) -> list[ast.stmt]:
    """Every statement of a function body, nested blocks included, nested scopes not."""
    out: list[ast.stmt] = []
    for s in body:
        out.append(s)
        if isinstance(s, _DEFS):
            continue
        for field in ("body", "orelse", "finalbody"):
            inner = getattr(s, field, None)
            if isinstance(inner, list):
                out += _statements(inner)
        for handler in getattr(s, "handlers", []) + getattr(s, "cases", []):
            out += _statements(handler.body)
    return out


def _top(tree: ast.Module, node: ast.AST) -> ast.stmt:
    for s in tree.body:
        if s.lineno <= node.lineno <= (s.end_lineno or s.lineno):  # type: ignore[attr-defined]
            return s
    raise EditError("the lines are not inside a module-level definition")
