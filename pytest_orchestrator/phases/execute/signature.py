"""Remove an unused parameter: the definition and every call site, read from the source.

rope's change-signature sees only calls written as ``f(...)`` or ``obj.f(...)``; a caller
that reaches the function through a variable (``append_row = _append_basic_row``), a
callback or a decorator keeps passing the argument, and the behaviour changes silently
(tabulate). So the removal is planned here, on the ``ast`` of every file that names the
function, and refused — before anything runs — unless every use is a call this module can
rewrite: the function is never used as a value, never decorated by something that could
call it differently, never named in a string (``getattr``, ``monkeypatch.setattr``) or a
doctest, and no call forwards ``*args`` / ``**kwargs`` or passes it an argument whose
evaluation has effects (dropping it would drop them).

A method is called through ``self``, ``cls``, ``super()``, its class or a subclass (an
explicit ``Class.f(obj, ...)`` shifts the positions by one), or through any object: so a
method is refused when another definition of the same name exists (an override still
taking the parameter, a base outside the repository, an unrelated class, a builtin type's
method), since those calls could not be told apart.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from pytest_orchestrator.errors import EditError
from pytest_orchestrator.phases.execute import imports
from pytest_orchestrator.phases.execute.refactor import (
    Definition,
    external_override,
    files_matching,
    files_mentioning,
    locate,
    module_of,
)
from pytest_orchestrator.phases.execute.spans import line_starts, span

Function = ast.FunctionDef | ast.AsyncFunctionDef

HARMLESS_DECORATORS = frozenset(
    {"staticmethod", "classmethod", "cache", "lru_cache", "abstractmethod", "override", "final"}
)
"""Decorators that call the function with exactly the arguments it was given (or never)."""

BUILTIN_METHODS = frozenset(
    name
    for kind in (object, list, dict, set, str, bytes, int, float, tuple, io.IOBase)
    for name in dir(kind)
)
"""Method names builtin types also define: ``x.append(...)`` may be a list's."""

_READS_LOCALS = frozenset({"locals", "vars", "currentframe", "_getframe"})


@dataclass
class Removal:
    """The new text of every file the removal changes, and what was rewritten."""

    definition: Definition
    texts: dict[str, str] = field(default_factory=dict)
    calls: int = 0


def plan_removal(root: Path, symbol: str, param: str, path: str | None) -> Removal:
    """The removal of ``param`` from ``symbol``, computed without writing anything; a clear
    `EditError` naming the obstacle when it cannot be done safely."""
    found = locate(root, symbol, "_orchestrate_placeholder", path)
    text = (root / found.path).read_text(encoding="utf-8")
    node = _function_at(ast.parse(text), found.line)
    if node is None:
        raise EditError(f"{found.qualname!r} is not a function: only functions have parameters")
    is_method = "." in found.qualname
    kind = _kind(node) if is_method else "function"
    index, keyword_only = _position(found, node, param, kind)
    _check_body(found, node, param)
    _check_decorators(found, node)
    name = node.name
    if name.startswith("__") and name.endswith("__"):
        raise EditError(
            f"{found.qualname!r} is a special method: Python itself calls it with its "
            "arguments, so removing one breaks those calls; refused"
        )
    if is_method:
        _check_other_definitions(root, found, name)
    _check_dynamic(root, name)
    removal = Removal(found)
    removal.texts[found.path] = text
    files = sorted(set(files_mentioning(root, name)) | {found.path})
    classes = _subclasses(root, found.qualname.split(".")[0]) if is_method else set()
    modules = _aliases(root, found, files) if not is_method else {}
    for rel in files:
        source = removal.texts.get(rel) or (root / rel).read_text(encoding="utf-8")
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        _check_doctests(rel, source, name)
        _check_strings(rel, tree, name)
        if is_method:
            calls = _method_calls(rel, tree, name, classes, kind)
        else:
            local, dotted = modules.get(rel, (set(), set()))
            calls = _function_calls(rel, tree, name, local, dotted)
        edits = []
        for call, shift in calls:
            edit = _call_edit(rel, source, call, param, index + shift, keyword_only)
            if edit is not None:
                edits.append(edit)
        if rel == found.path:
            edits.append(_definition_edit(source, node, param))
            edits += _docstring_edits(source, node, param)
        if edits:
            removal.texts[rel] = _apply(source, edits)
            removal.calls += len(edits) - (rel == found.path)
    if found.stub is not None:
        stub_text = (root / found.stub).read_text(encoding="utf-8")
        stub_node = _function_at(ast.parse(stub_text), _stub_line(root, found))
        if stub_node is not None:
            removal.texts[found.stub] = _apply(
                stub_text, [_definition_edit(stub_text, stub_node, param)]
            )
    for rel, new in removal.texts.items():
        try:
            ast.parse(new)
        except SyntaxError as exc:  # a shape this module does not handle: never write it
            raise EditError(f"removing {param!r} would leave {rel} unparsable: {exc}") from None
    removal.texts = {
        rel: new
        for rel, new in removal.texts.items()
        if new != (root / rel).read_text(encoding="utf-8")
    }
    return removal


# ------------------------------------------------------------------ the definition


def _function_at(tree: ast.Module, line: int) -> Function | None:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.lineno == line:
            return node
    return None


def _stub_line(root: Path, found: Definition) -> int:
    from pytest_orchestrator.phases.execute.refactor import find_definitions

    stub = find_definitions(root, found.qualname, found.stub)
    return stub[0].line if stub else -1


def _decorator_names(node: Function) -> list[str]:
    names = []
    for d in node.decorator_list:
        target = d.func if isinstance(d, ast.Call) else d
        names.append(
            target.id
            if isinstance(target, ast.Name)
            else (target.attr if isinstance(target, ast.Attribute) else "?")
        )
    return names


def _kind(node: Function) -> str:
    names = _decorator_names(node)
    if "staticmethod" in names:
        return "static"
    if "classmethod" in names:
        return "class"
    return "method"


def _position(found: Definition, node: Function, param: str, kind: str) -> tuple[int, bool]:
    """The parameter's index among the positional ones a caller passes (``self``/``cls``
    not counted), and whether it is keyword-only."""
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    if kind in ("method", "class"):
        if not positional:
            raise EditError(f"{found.qualname!r} takes no self/cls: refused")
        if positional[0].arg == param:
            raise EditError(f"{param!r} is the instance/class parameter of {found.qualname!r}")
        positional = positional[1:]
    for i, arg in enumerate(positional):
        if arg.arg == param:
            return i, False
    if any(a.arg == param for a in args.kwonlyargs):
        return -1, True
    if param in {a.arg for a in (args.vararg, args.kwarg) if a is not None}:
        raise EditError(
            f"{param!r} collects the extra arguments of {found.qualname!r} (*{param} or "
            f"**{param}): callers' arguments would bind elsewhere; refused"
        )
    raise EditError(f"{found.qualname!r} has no parameter {param!r}")


def _check_body(found: Definition, node: Function, param: str) -> None:
    for stmt in node.body:
        for n in ast.walk(stmt):
            if isinstance(n, ast.Name) and n.id == param:
                raise EditError(
                    f"{param!r} is used in the body of {found.qualname!r} (line {n.lineno}): "
                    "only an unused parameter can be removed; refused"
                )
            if isinstance(n, ast.Call):
                callee = n.func
                called = callee.id if isinstance(callee, ast.Name) else getattr(callee, "attr", "")
                if called in _READS_LOCALS:
                    raise EditError(
                        f"{found.qualname!r} reads its own locals ({called}(), line "
                        f"{n.lineno}): {param!r} may be read through them; refused"
                    )


def _check_decorators(found: Definition, node: Function) -> None:
    odd = [n for n in _decorator_names(node) if n not in HARMLESS_DECORATORS]
    if odd:
        raise EditError(
            f"{found.qualname!r} is decorated with @{odd[0]}, which could call it with other "
            "arguments than its callers pass: call sites cannot all be seen; refused"
        )


def _check_other_definitions(root: Path, found: Definition, name: str) -> None:
    overridden = external_override(root, found)
    if overridden:
        raise EditError(
            f"{found.qualname!r} overrides {overridden}, defined outside the repository: "
            "callers through that base would still pass the argument; refused"
        )
    if name in BUILTIN_METHODS:
        raise EditError(
            f"builtin types also have a method {name!r}: calls `x.{name}(...)` cannot be told "
            f"apart from calls of {found.qualname!r}; refused"
        )
    for rel in files_mentioning(root, name):
        if not rel.endswith(".py"):
            continue
        try:
            tree = ast.parse((root / rel).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, SyntaxError):
            continue
        for cls in ast.walk(tree):
            if not isinstance(cls, ast.ClassDef):
                continue
            for stmt in cls.body:
                if not isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                if stmt.name != name or (rel == found.path and stmt.lineno == found.line):
                    continue
                raise EditError(
                    f"{cls.name}.{name} ({rel}:{stmt.lineno}) is another method named {name!r}: "
                    f"calls `x.{name}(...)` cannot be told apart (an override would keep "
                    "the parameter); refused"
                )


# ------------------------------------------------------------------ finding the calls


def _subclasses(root: Path, cls: str) -> set[str]:
    """``cls`` and the classes of the repository deriving from it (by name, transitively)."""
    names = {cls}
    bases: dict[str, set[str]] = {}
    for rel in files_mentioning(root, cls):
        try:
            tree = ast.parse((root / rel).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, SyntaxError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases.setdefault(node.name, set()).update(
                    b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases
                )
    grew = True
    while grew:
        more = {c for c, b in bases.items() if b & names} - names
        names |= more
        grew = bool(more)
    return names


def _importer(root: Path, rel: str) -> str:
    module = module_of(root, rel)
    return module + ".__init__" if rel.endswith("__init__.py") else module


def _aliases(
    root: Path, found: Definition, files: list[str]
) -> dict[str, tuple[set[str], set[str]]]:
    """Per file: the local names bound to the function (``from m import f as g``), and the
    dotted names of modules holding it (``m``, ``pkg.m``, an ``import pkg.m as x``'s ``x``).
    A package re-exporting the function (``from .m import f`` in its ``__init__``) holds it
    too; followed to a fixed point."""
    name = found.qualname
    holders = {module_of(root, found.path)}
    trees: dict[str, ast.Module] = {}
    starred = files_matching(root, r"import\s+\*") if not name.startswith("_") else []
    for rel in sorted({*files, *starred}):  # a package re-exporting with `*` names nothing
        try:
            trees[rel] = ast.parse((root / rel).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, SyntaxError):
            continue
    out: dict[str, tuple[set[str], set[str]]] = {rel: (set(), set()) for rel in trees}
    out.setdefault(found.path, (set(), set()))[0].add(name)
    grew = True
    while grew:
        grew = False
        for rel, tree in trees.items():
            local, dotted = out[rel]
            importer = _importer(root, rel)
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom):
                    source = imports.absolute(importer, node)
                    for alias in node.names:
                        bound = alias.asname or alias.name
                        if alias.name == "*" and not name.startswith("_"):  # binds it too
                            bound, alias = name, ast.alias(name=name)
                        if source in holders and alias.name == name and bound not in local:
                            local.add(bound)
                            grew = True
                            if bound == name and module_of(root, rel) not in holders:
                                holders.add(module_of(root, rel))
                        full = f"{source}.{alias.name}"
                        if full in holders and bound not in dotted:
                            dotted.add(bound)
                            grew = True
                elif isinstance(node, ast.Import):
                    for alias in node.names:
                        if alias.name in holders:
                            bound = alias.asname or alias.name
                            if bound not in dotted:
                                dotted.add(bound)
                                grew = True
    return out


def _bound_in(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> set[str]:
    """Names a function binds locally (parameters, assignments, nested definitions)."""
    args = node.args
    names = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}
    names |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
    body = node.body if isinstance(node.body, list) else [node.body]
    declared: set[str] = set()
    pending: list[ast.AST] = list(body)
    while pending:
        n = pending.pop()
        if isinstance(n, ast.Global | ast.Nonlocal):
            declared.update(n.names)
        elif isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load):
            names.add(n.id)
        elif isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(n.name)
            continue
        elif isinstance(n, ast.Lambda):
            continue
        elif isinstance(n, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in n.names)
        pending.extend(ast.iter_child_nodes(n))
    return names - declared


Calls = list[tuple[ast.Call, int]]


def _function_calls(
    rel: str, tree: ast.Module, name: str, local: set[str], dotted: set[str]
) -> Calls:
    """The calls of a module-level function in one file; `EditError` at any other use."""
    calls: Calls = []

    def visit(node: ast.AST, shadowed: frozenset[str], parent: ast.AST | None) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            for d in getattr(node, "decorator_list", []):
                visit(d, shadowed, node)
            for d in [*node.args.defaults, *node.args.kw_defaults]:
                if d is not None:
                    visit(d, shadowed, node)
            inner = shadowed | _bound_in(node)
            for child in node.body if isinstance(node.body, list) else [node.body]:
                visit(child, frozenset(inner), node)
            return
        refers = (
            isinstance(node, ast.Name)
            and node.id in local - shadowed
            and isinstance(node.ctx, ast.Load)
        ) or (
            isinstance(node, ast.Attribute)
            and node.attr == name
            and imports.dotted_name(node.value) in dotted
            and imports.dotted_name(node.value).split(".")[0] not in shadowed
        )
        if refers:
            if isinstance(parent, ast.Call) and parent.func is node:
                calls.append((parent, 0))
            else:
                _used_as_value(rel, node, name)
            return
        for inner_node in ast.iter_child_nodes(node):
            visit(inner_node, shadowed, node)

    visit(tree, frozenset(), None)
    return calls


def _method_calls(rel: str, tree: ast.Module, name: str, classes: set[str], kind: str) -> Calls:
    """The calls of a method in one file: ``x.name(...)`` for any ``x`` (a method name
    that is unique in the repository), positions shifted by one for ``Class.name(obj, ...)``
    of a plain method; `EditError` at any other use of ``.name``."""
    calls: Calls = []
    parents: dict[int, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[id(child)] = node
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and node.attr == name):
            continue
        parent = parents.get(id(node))
        if not (isinstance(parent, ast.Call) and parent.func is node):
            _used_as_value(rel, node, name)
        through_class = isinstance(node.value, ast.Name) and node.value.id in classes
        calls.append((parent, 1 if through_class and kind == "method" else 0))
    return calls


def _used_as_value(rel: str, node: ast.AST, name: str) -> NoReturn:
    raise EditError(
        f"{name!r} is used as a value at {rel}:{getattr(node, 'lineno', '?')} (assigned, "
        "passed, stored or decorated), so its call sites cannot all be seen; refused"
    )


def _check_strings(rel: str, tree: ast.Module, name: str) -> None:
    """A string naming the function — ``getattr(obj, "name")``, ``monkeypatch.setattr(
    "pkg.mod.name", …)``, code generated as text (``"env.name(ctx, …)"``) — reaches it by a
    call this module cannot see. Docstrings and ``__all__`` entries only mention it."""
    quiet: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            quiet.add(id(body[0].value))
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                quiet.update(id(n) for n in ast.walk(node))
    word = re.compile(rf"\b{re.escape(name)}\b")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in quiet
            and word.search(node.value)
        ):
            raise EditError(
                f"{name!r} is named in the string {node.value[:40]!r} at {rel}:{node.lineno} "
                "(getattr, a patch target, generated code): a call through it cannot be "
                "seen; refused"
            )


def _check_dynamic(root: Path, name: str) -> None:
    """A lookup by a computed name that could yield the function: ``getattr(self,
    f"visit_{kind}")`` for ``visit_Macro``, ``globals()[f"_{name}"]`` for ``_parse_range``
    (werkzeug's deprecated names). Any file may hold the dispatcher, so every file doing
    such a lookup is read; a computed name whose fixed prefix starts ``name`` is refused."""
    pattern = r"getattr\(|globals\(\)|vars\(|__dict__\["
    for rel in files_matching(root, pattern):
        try:
            tree = ast.parse((root / rel).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, SyntaxError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and imports.dotted_name(node.func) in (
                "getattr",
                "hasattr",
            ):
                looked_up = node.args[1] if len(node.args) > 1 else None
            elif isinstance(node, ast.Subscript) and _namespace(node.value):
                looked_up = node.slice
            else:
                continue
            if not isinstance(looked_up, ast.JoinedStr) or not looked_up.values:
                continue
            head = looked_up.values[0]
            prefix = head.value if isinstance(head, ast.Constant) else ""
            if isinstance(prefix, str) and prefix and name.startswith(prefix):
                raise EditError(
                    f"{name!r} may be looked up by a computed name at {rel}:{node.lineno} "
                    f"({ast.unparse(looked_up)[:40]}): a call through it cannot be seen; refused"
                )


def _namespace(node: ast.expr) -> bool:
    """``globals()``, ``vars(x)``, ``x.__dict__``: a namespace read by key."""
    if isinstance(node, ast.Call):
        return imports.dotted_name(node.func) in ("globals", "vars", "locals")
    return isinstance(node, ast.Attribute) and node.attr == "__dict__"


def _check_doctests(rel: str, source: str, name: str) -> None:
    pattern = re.compile(rf"^\s*(>>>|\.\.\.) .*\b{re.escape(name)}\b", re.MULTILINE)
    found = pattern.search(source)
    if found is not None:
        line = source.count("\n", 0, found.start()) + 1
        raise EditError(
            f"{name!r} appears in a doctest at {rel}:{line}: its calls there are not "
            "rewritten; refused"
        )


# ------------------------------------------------------------------ the edits


Edit = tuple[int, int, str]


def _pure(node: ast.expr) -> bool:
    """An argument whose evaluation has no effect, so dropping it drops nothing else."""
    if isinstance(node, ast.Constant | ast.Name | ast.Lambda):
        return True
    if isinstance(node, ast.Attribute):
        return _pure(node.value)
    if isinstance(node, ast.UnaryOp):
        return _pure(node.operand)
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return all(_pure(e) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(_pure(e) for e in [*node.values, *(k for k in node.keys if k is not None)])
    return False


def _call_edit(
    rel: str, source: str, call: ast.Call, param: str, index: int, keyword_only: bool
) -> Edit | None:
    starred = [a for a in call.args if isinstance(a, ast.Starred)]
    forwarded = [k for k in call.keywords if k.arg is None]
    where = f"{rel}:{call.lineno}"
    positional = [a for a in call.args if not isinstance(a, ast.Starred)]
    passed: ast.expr | ast.keyword | None = None
    if not keyword_only and starred:
        raise EditError(f"the call at {where} passes *args: where {param!r} goes is unknown")
    if not keyword_only and index < len(positional):
        passed = positional[index]
    else:
        passed = next((k for k in call.keywords if k.arg == param), None)
        if passed is None and forwarded:
            raise EditError(
                f"the call at {where} passes **kwargs, which may hold {param!r}; refused"
            )
    if passed is None:
        return None
    value = passed.value if isinstance(passed, ast.keyword) else passed
    if not _pure(value):
        raise EditError(
            f"the argument passed as {param!r} at {where} is computed "
            f"({ast.unparse(value)[:40]}): removing it would drop its effects; refused"
        )
    starts = line_starts(source)
    paren = source.index("(", span(source, starts, call.func)[1])
    elements, close = _elements(source, paren)
    given: list[ast.expr | ast.keyword] = [*call.args, *call.keywords]
    ordered = sorted(given, key=lambda n: (n.lineno, n.col_offset))
    if len(elements) != len(ordered):  # a generator argument's own parentheses, …
        raise EditError(f"cannot read the arguments of the call at {where}; refused")
    return _drop(source, elements, ordered.index(passed), paren, close)


def _definition_edit(source: str, node: Function, param: str) -> Edit:
    """The parameter list without ``param``; a bare ``*`` or a ``/`` it leaves with nothing
    after / before it (a syntax error) goes too."""
    begin = span(source, line_starts(source), node)[0]
    paren = source.index("(", source.index(node.name, begin) + len(node.name))
    _, close = _elements(source, paren)
    local = source[paren:close] + ")"
    elements, end = _elements(local, 0)
    texts = [local[a:b] for a, b in elements]
    at = next(i for i, t in enumerate(texts) if re.match(rf"{re.escape(param)}\b", t))
    while True:
        local = _apply(local, [_drop(local, elements, at, 0, end)])
        elements, end = _elements(local, 0)
        texts = [local[a:b] for a, b in elements]
        star = texts.index("*") if "*" in texts else -1
        if texts and texts[0] == "/":
            at = 0
        elif star >= 0 and all(t.startswith("**") for t in texts[star + 1 :]):
            at = star
        else:
            return paren + 1, close, local[1:-1]


def _docstring_edits(source: str, node: Function, param: str) -> list[Edit]:
    """The function's own docstring entry for ``param`` (``:param p:`` / ``:type p:``,
    Google's ``p (int): …``, numpydoc's ``p : int``) with its indented continuation lines:
    left, it would document a parameter that no longer exists."""
    first = node.body[0] if node.body else None
    if not (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        return []
    begin, end = span(source, line_starts(source), first.value)
    word = re.escape(param)
    entry = re.compile(
        rf"^(?P<indent>[ \t]*)(?::(?:param|type|arg|argument|keyword|kwarg)\b[^:\n]*\b{word}:"
        rf"|{word}(?:[ \t]*\([^)\n]*\))?[ \t]*:)"
    )
    edits: list[Edit] = []
    lines = source[begin:end].splitlines(keepends=True)
    at = begin
    i = 0
    while i < len(lines):
        found = entry.match(lines[i]) if i else None  # not the opening line
        if found is None:
            at += len(lines[i])
            i += 1
            continue
        indent = len(found["indent"].expandtabs())
        stop = i + 1
        while stop < len(lines) - 1 and lines[stop].strip():
            if len(lines[stop]) - len(lines[stop].lstrip()) <= indent:
                break
            stop += 1
        size = sum(len(line) for line in lines[i:stop])
        edits.append((at, at + size, ""))
        at += size
        i = stop
    return edits


def _elements(source: str, paren: int) -> tuple[list[tuple[int, int]], int]:
    """The comma-separated elements between the parenthesis at ``paren`` and its match, as
    ``[begin, end)`` offsets (tokens, so commas in strings, comments and nested brackets
    do not split), and the offset of the matching parenthesis."""
    line_begin = source.rfind("\n", 0, paren) + 1
    starts = line_starts(source[line_begin:])
    out: list[tuple[int, int]] = []
    depth = 0
    current: list[int] = []
    readline = io.StringIO(source[line_begin:]).readline
    for tok in tokenize.generate_tokens(readline):
        begin = line_begin + starts[tok.start[0] - 1] + tok.start[1]
        end = line_begin + starts[tok.end[0] - 1] + tok.end[1]
        if begin < paren:
            continue
        if tok.type == tokenize.OP and tok.string in "([{":
            depth += 1
            if depth == 1:
                continue
        elif tok.type == tokenize.OP and tok.string in ")]}":
            depth -= 1
            if depth == 0:
                if current:
                    out.append((current[0], current[1]))
                return out, begin
        if depth == 1 and tok.type == tokenize.OP and tok.string == ",":
            if current:
                out.append((current[0], current[1]))
            current = []
            continue
        if tok.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE):
            continue
        current = [current[0] if current else begin, end]
    raise EditError("unbalanced parentheses")


def _drop(source: str, elements: list[tuple[int, int]], at: int, paren: int, close: int) -> Edit:
    """Delete element ``at`` with one comma. On a line of its own (a call laid out one
    argument per line): the whole line, its comment included. Else up to the next element's
    start, or for the last one from the previous element's end (a trailing comma stays as
    it was). The only one: everything between the parentheses."""
    begin, end = elements[at]
    if len(elements) == 1:
        return paren + 1, close, ""
    after = elements[at + 1][0] if at + 1 < len(elements) else close
    line = source.rfind("\n", 0, begin) + 1
    own_line = not source[line:begin].strip() and "\n" in source[end:after]
    if own_line and "\n" in source[paren:begin]:
        return line, source.index("\n", end) + 1, ""
    if at + 1 < len(elements):
        return begin, after, ""
    return elements[at - 1][1], end, ""


def _apply(source: str, edits: list[Edit]) -> str:
    for begin, end, new in sorted(set(edits), reverse=True):
        source = source[:begin] + new + source[end:]
    return source
