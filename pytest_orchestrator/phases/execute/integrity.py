"""Weakening found in the diff itself: what a change does to the tests that guard it.

A plan that wants to go green can skip the test that catches its bug, loosen an assertion,
delete a test, or teach pytest to stop collecting it. The gate run's baseline parity
catches most of that by outcome; this module catches it by reading the change, so each
finding names ``file:line`` and what changed, independent of how the run went:

* skip / skipif / xfail markers (on the test, its class or ``pytestmark``) and
  ``pytest.skip()`` / ``xfail()`` / ``importorskip()`` / ``skipTest()`` calls added;
* fewer checks per test function (``assert``, ``assert*`` calls, ``pytest.raises`` /
  ``warns`` / ``approx``; a check inside a ``try`` or ``suppress`` / ``pytest.raises``
  block that catches a failed check does not count, nor does ``raises`` of such an
  error), a comparison made weaker (``==`` -> ``>=``, a comparison -> a bare truth test,
  ``or True``, ``x == x``), a widened ``approx`` tolerance, fewer parametrized cases, an
  early ``return``;
* deleted test functions or test files;
* new pytest hooks, ``collect_ignore``, ``pytest_plugins`` or ``pytestmark`` in test
  files and conftests, and any change to the pytest configuration (``addopts``,
  ``testpaths``, ``python_files``, ``norecursedirs``, ``filterwarnings``, … in every ini
  source pytest reads);
* files that change the interpreter under the tests: ``sitecustomize``, ``.pth`` files,
  a new top-level module that shadows the standard library or an installed package.

Everything here is pure: texts in, findings out. `pytest_orchestrator.phases.execute.gate`
decides which files count as tests and whether test edits were allowed at all.
"""

from __future__ import annotations

import ast
import configparser
import difflib
import re
import sys
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from pathlib import PurePosixPath
from typing import Any, Final

from pytest_orchestrator.model import Finding

SKIP_NAMES: Final = frozenset(
    {"skip", "skipif", "xfail", "skipIf", "skipUnless", "expectedFailure", "SkipTest"}
)
SKIP_CALLS: Final = frozenset({"skip", "xfail", "importorskip", "skipTest", "SkipTest"})
CHECK_CALLS: Final = frozenset({"raises", "warns", "deprecated_call", "approx", "fail"})
COLLECTION_NAMES: Final = frozenset(
    {"collect_ignore", "collect_ignore_glob", "pytest_plugins", "pytestmark"}
)
CONFIG_FILES: Final = frozenset(
    {
        "pytest.ini",
        ".pytest.ini",
        "pytest.toml",
        ".pytest.toml",
        "pyproject.toml",
        "tox.ini",
        "setup.cfg",
    }
)
INTERPRETER_FILES: Final = frozenset({"sitecustomize.py", "usercustomize.py"})
TEST_CHANGE_WORDS: Final = re.compile(
    r"\b(?:add|write|update|change|edit|modify|extend|adjust|fix|rewrite|amend|create|"
    r"remove|delete|drop|replace|refactor|rename|move)\s+"
    r"(?:(?:a|an|the|some|more|new|missing|unit|regression|integration|existing|failing|"
    r"broken|old|its|their|our|my|these|those|this|that|affected|related|relevant)\s+)*"
    r"(?:tests?|test\s+cases?|test\s+suite|unit\s+tests?|assertions?)\b",
    re.IGNORECASE,
)
"""A command that asks for test changes in words: "add tests for …", "update the tests"."""

# Comparison strength: a weaker operator lets more wrong values through.
_STRENGTH: Final[dict[type[ast.cmpop], int]] = {
    ast.Eq: 3,
    ast.Is: 3,
    ast.In: 2,
    ast.NotIn: 2,
    ast.LtE: 2,
    ast.GtE: 2,
    ast.Lt: 1,
    ast.Gt: 1,
    ast.NotEq: 1,
    ast.IsNot: 1,
}


def tests_requested(command: str) -> str:
    """The words of ``command`` that ask for test changes, or ``""``."""
    match = TEST_CHANGE_WORDS.search(command)
    return match.group(0) if match else ""


@dataclass(frozen=True)
class FileChange:
    """One file of the change: its text at the base and in the attempt (None: absent)."""

    path: str
    base: str | None
    new: str | None


def findings(
    changes: list[FileChange],
    *,
    is_test: Callable[[str], bool],
    renames: Mapping[str, str] | None = None,
) -> list[Finding]:
    """Every weakening the change makes; ``renames`` maps old names to new (a rename op's)."""
    found: list[Finding] = []
    for change in changes:
        name = PurePosixPath(change.path).name
        if name in CONFIG_FILES:
            found += _config(change)
        found += _interpreter(change)
        if name.endswith(".py") and is_test(change.path):
            found += _python(change, dict(renames or {}))
    return found


# ---------------------------------------------------------------------------- Python


@dataclass
class _Function:
    """What guards one function (a test or a helper in a test file)."""

    line: int
    is_test: bool
    checks: int = 0
    skip_markers: int = 0
    skip_calls: int = 0
    cases: int = 0
    early_return: int = 0
    asserts: list[ast.Assert | ast.Call] = field(default_factory=list)


@dataclass
class _Module:
    functions: dict[str, _Function]
    skip_markers: int  # pytestmark and class decorators
    skip_calls: int  # module-level pytest.skip(allow_module_level=True) and friends
    names: dict[str, tuple[int, str]]  # hooks and collection names -> (line, source)


def _python(change: FileChange, renames: dict[str, str]) -> list[Finding]:
    path = change.path
    new = _parse(change.new) if change.new is not None else None
    base = _parse(change.base) if change.base is not None else None
    if change.new is not None and new is None:
        return [Finding(path=path, kind="unparsable", detail="the test file does not parse")]
    if new is None:
        tests = [n for n, f in (base.functions.items() if base else []) if f.is_test]
        if not tests:
            return []
        return [
            Finding(
                path=path,
                kind="deleted test file",
                detail=f"{len(tests)} test function(s): {', '.join(tests[:5])}",
            )
        ]
    out: list[Finding] = []
    before = base or _Module({}, 0, 0, {})
    for name, (line, source) in new.names.items():
        old = before.names.get(name)
        if old is None or rename_identifiers(old[1], renames) != rename_identifiers(
            source, renames
        ):
            kind = "new pytest hook" if name.endswith("()") and old is None else None
            what = "changed" if old is not None else "added"
            out.append(
                Finding(
                    path=path,
                    line=line,
                    kind=kind or "collection changed",
                    detail=f"{name} {what}" + ("" if kind else f": {_short(source)}"),
                )
            )
    if new.skip_markers > before.skip_markers:
        out.append(Finding(path=path, kind="skip marker added", detail="on a class or pytestmark"))
    if new.skip_calls > before.skip_calls:
        out.append(
            Finding(path=path, kind="skip call added", detail="at module level (skips the file)")
        )
    for name, old_fn in before.functions.items():
        fn = new.functions.get(name) or new.functions.get(rename_identifiers(name, renames))
        if fn is None:
            if old_fn.is_test:
                out.append(
                    Finding(
                        path=path,
                        line=old_fn.line,
                        kind="deleted test",
                        detail=f"{name} is gone (base line {old_fn.line})",
                    )
                )
            continue
        out += _compare(path, name, old_fn, fn, renames)
    return out


def _compare(
    path: str, name: str, old: _Function, new: _Function, renames: dict[str, str]
) -> Iterator[Finding]:
    def finding(kind: str, detail: str) -> Finding:
        return Finding(path=path, line=new.line, kind=kind, detail=f"{name}: {detail}")

    if new.skip_markers > old.skip_markers:
        yield finding("skip marker added", "a skip/skipif/xfail marker")
    if new.skip_calls > old.skip_calls:
        yield finding("skip call added", "pytest.skip()/xfail()/importorskip()/skipTest()")
    if new.checks < old.checks:
        yield finding("fewer assertions", f"{old.checks} checks at the base, {new.checks} now")
    if new.cases < old.cases:
        yield finding("fewer cases", f"{old.cases} parametrized cases at the base, {new.cases}")
    if new.early_return > old.early_return:
        yield finding("early return", "a return before the end skips the rest of the test")
    olds = [rename_identifiers(ast.unparse(a), renames) for a in old.asserts]
    news = [rename_identifiers(ast.unparse(a), renames) for a in new.asserts]
    matcher = difflib.SequenceMatcher(a=olds, b=news, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "replace":
            continue
        for a, b in zip(old.asserts[i1:i2], new.asserts[j1:j2], strict=False):
            line = getattr(b, "lineno", new.line)
            if _strength(b) < _strength(a):
                yield Finding(
                    path=path,
                    line=line,
                    kind="assertion loosened",
                    detail=f"{name}: `{_short(ast.unparse(a))}` -> `{_short(ast.unparse(b))}`",
                )
            elif _tolerance(b) > _tolerance(a):
                yield Finding(
                    path=path,
                    line=line,
                    kind="tolerance widened",
                    detail=f"{name}: `{_short(ast.unparse(a))}` -> `{_short(ast.unparse(b))}`",
                )


def _parse(text: str) -> _Module | None:
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    functions: dict[str, _Function] = {}
    names: dict[str, tuple[int, str]] = {}
    skip_markers = skip_calls = 0
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            functions[node.name] = _function(node, node.name.startswith("test"))
            if node.name.startswith("pytest_"):
                names[f"{node.name}()"] = (node.lineno, ast.unparse(node))
        elif isinstance(node, ast.ClassDef):
            skip_markers += sum(_skip_names(d) for d in node.decorator_list)
            for name, fn in _class_functions(node, node.name):
                functions[name] = fn
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            skip_calls += sum(_skip_calls(n) for n in ast.walk(node))
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and target.id in COLLECTION_NAMES:
                    names[target.id] = (node.lineno, ast.unparse(node))
                    if target.id == "pytestmark" and node.value is not None:
                        skip_markers += _skip_names(node.value)
        else:
            skip_calls += sum(_skip_calls(n) for n in ast.walk(node))
    return _Module(functions, skip_markers, skip_calls, names)


def _class_functions(node: ast.ClassDef, prefix: str) -> Iterator[tuple[str, _Function]]:
    is_test_class = node.name.startswith("Test") or any(
        isinstance(b, ast.Attribute | ast.Name) and "TestCase" in ast.unparse(b) for b in node.bases
    )
    for item in node.body:
        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
            yield (
                f"{prefix}.{item.name}",
                _function(item, is_test_class and item.name.startswith("test")),
            )
        elif isinstance(item, ast.ClassDef):
            yield from _class_functions(item, f"{prefix}.{item.name}")


def _function(node: ast.FunctionDef | ast.AsyncFunctionDef, is_test: bool) -> _Function:
    fn = _Function(line=node.lineno, is_test=is_test)
    for decorator in node.decorator_list:
        fn.skip_markers += _skip_names(decorator)
        fn.cases += _parametrize_cases(decorator)
    swallowed = _swallowed(node)
    body_nodes = (child for statement in node.body for child in ast.walk(statement))
    for child in body_nodes:
        if id(child) in swallowed:
            continue
        if isinstance(child, ast.Assert):
            fn.checks += 1
            fn.asserts.append(child)
        elif isinstance(child, ast.Call):
            called = _called_name(child)
            broad = called == "raises" and any(_broad(arg) for arg in child.args)
            if called.startswith("assert") or (called in CHECK_CALLS and not broad):
                fn.checks += 1
                if called.startswith("assert"):
                    fn.asserts.append(child)
            fn.skip_calls += _skip_calls(child)
        elif isinstance(child, ast.Raise) and child.exc is not None:
            fn.skip_calls += int(_called_name(child.exc) == "SkipTest")
    body = node.body
    fn.early_return = sum(isinstance(s, ast.Return) for s in body[:-1])
    return fn


BROAD_ERRORS: Final = frozenset({"AssertionError", "Exception", "BaseException"})
"""Exceptions a failed check raises (``assert``: AssertionError; ``pytest.fail``: a
BaseException): catching one around a check makes the check pass whatever happens."""


def _swallowed(function: ast.FunctionDef | ast.AsyncFunctionDef) -> set[int]:
    """Ids of the nodes whose failure cannot fail the test: inside a ``try`` whose handler
    catches a broad error (or everything) without raising, or inside ``with
    contextlib.suppress(...)`` / ``pytest.raises(...)`` of a broad error."""
    out: set[int] = set()
    for node in ast.walk(function):
        if _catches_failures(node):
            body: list[ast.stmt] = getattr(node, "body", [])
            out.update(id(n) for statement in body for n in ast.walk(statement))
    return out


def _catches_failures(node: ast.AST) -> bool:
    if isinstance(node, ast.Try | ast.TryStar):
        return any(
            _broad(h.type) and not any(isinstance(n, ast.Raise) for n in ast.walk(h))
            for h in node.handlers
        )
    if isinstance(node, ast.With | ast.AsyncWith):
        return any(
            isinstance(item.context_expr, ast.Call)
            and _called_name(item.context_expr) in ("suppress", "raises")
            and any(_broad(arg) for arg in item.context_expr.args)
            for item in node.items
        )
    return False


def _broad(error: ast.expr | None) -> bool:
    """Whether an ``except`` clause's type (None: bare) catches a failed check."""
    if error is None:
        return True
    if isinstance(error, ast.Tuple):
        return any(_broad(e) for e in error.elts)
    return _called_name(error) in BROAD_ERRORS


def _called_name(node: ast.expr) -> str:
    func = node.func if isinstance(node, ast.Call) else node
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ""


def _skip_names(node: ast.AST) -> int:
    """Skip-like names in a decorator or marker expression (``pytest.mark.skip``, …)."""
    count = 0
    for child in ast.walk(node):
        name = child.attr if isinstance(child, ast.Attribute) else getattr(child, "id", None)
        count += int(name in SKIP_NAMES)
    return count


def _skip_calls(node: ast.AST) -> int:
    return int(isinstance(node, ast.Call) and _called_name(node) in SKIP_CALLS)


def _parametrize_cases(decorator: ast.expr) -> int:
    if not (isinstance(decorator, ast.Call) and _called_name(decorator) == "parametrize"):
        return 0
    values = decorator.args[1] if len(decorator.args) > 1 else None
    for keyword in decorator.keywords:
        if keyword.arg == "argvalues":
            values = keyword.value
    if isinstance(values, ast.List | ast.Tuple | ast.Set):
        return len(values.elts)
    return 0


def _strength(check: ast.Assert | ast.Call) -> int:
    """How much a check rules out: 3 exact, 2 a bound, 1 a truth test, 0 nothing."""
    if isinstance(check, ast.Call):  # assertEqual and friends: as strong as their name says
        name = _called_name(check)
        weak = ("True", "False", "IsNotNone", "NotEqual", "Greater", "Less", "Not")
        return 1 if any(w in name for w in weak) else 3
    return _expr_strength(check.test)


def _expr_strength(node: ast.expr) -> int:
    if isinstance(node, ast.Constant):
        return 0 if node.value else 3
    if isinstance(node, ast.Compare):
        sides = [ast.dump(side) for side in (node.left, *node.comparators)]
        if len(set(sides)) < len(sides):  # `x == x`: true whatever the code does
            return 0
        return min(_STRENGTH.get(type(op), 1) for op in node.ops)
    if isinstance(node, ast.BoolOp):
        parts = [_expr_strength(v) for v in node.values]
        return max(parts) if isinstance(node.op, ast.And) else min(parts)
    return 1


def _tolerance(node: ast.AST) -> float:
    """The largest constant ``rel``/``abs`` tolerance given to ``approx``/``isclose`` here."""
    widest = 0.0
    for child in ast.walk(node):
        if isinstance(child, ast.Call) and _called_name(child) in ("approx", "isclose"):
            for keyword in child.keywords:
                if keyword.arg in ("rel", "abs", "rel_tol", "abs_tol", "rtol", "atol"):
                    value = keyword.value
                    if isinstance(value, ast.Constant) and isinstance(value.value, int | float):
                        widest = max(widest, float(value.value))
    return widest


def rename_identifiers(text: str, renames: Mapping[str, str]) -> str:
    """``text`` with each old name replaced by its new one, whole identifiers only."""
    name = text
    for old, new in renames.items():
        name = re.sub(rf"(?<![\w]){re.escape(old)}(?![\w])", new, name)
    return name


def _short(text: str, limit: int = 100) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------------------- configuration


def _config(change: FileChange) -> list[Finding]:
    name = PurePosixPath(change.path).name
    old = _pytest_section(name, change.base)
    new = _pytest_section(name, change.new)
    if old == new:
        return []
    if new is not None and old is None:
        return [
            Finding(
                path=change.path,
                kind="test configuration changed",
                detail="a pytest configuration is added"
                + (f": {_short(repr(new))}" if new else " (an empty pytest.ini still wins)"),
            )
        ]
    if new is None:
        return [
            Finding(
                path=change.path,
                kind="test configuration changed",
                detail="the pytest configuration is removed",
            )
        ]
    keys = sorted(k for k in set(old or {}) | set(new) if (old or {}).get(k) != new.get(k))
    return [
        Finding(
            path=change.path,
            kind="test configuration changed",
            detail=f"{key}: {_short(repr((old or {}).get(key)))} -> {_short(repr(new.get(key)))}",
        )
        for key in keys
    ]


def _pytest_section(name: str, text: str | None) -> dict[str, Any] | None:
    """The pytest settings a config file holds, or None when it holds none."""
    if text is None:
        return None
    try:
        if name.endswith(".toml"):
            data = tomllib.loads(text)
            if name != "pyproject.toml":
                return dict(data.get("pytest", {}))
            tool = data.get("tool", {}).get("pytest")
            return None if tool is None else dict(tool)
        parser = configparser.RawConfigParser(strict=False, interpolation=None)
        parser.read_string(text)
    except (tomllib.TOMLDecodeError, configparser.Error, AttributeError):
        return {"<unparsable>": text}
    section = {"setup.cfg": "tool:pytest"}.get(name, "pytest")
    if parser.has_section(section):
        return dict(parser.items(section))
    return {} if name in ("pytest.ini", ".pytest.ini") else None


# ---------------------------------------------------------------------------- interpreter


def _interpreter(change: FileChange) -> list[Finding]:
    if change.new is None or change.base is not None:
        return []
    path = PurePosixPath(change.path)
    if path.name in INTERPRETER_FILES or path.suffix == ".pth":
        return [
            Finding(
                path=change.path,
                kind="interpreter changed",
                detail=f"{path.name} runs code in every Python process started in the tree",
            )
        ]
    parts = path.parts[1:] if path.parts[:1] == ("src",) else path.parts
    top = ""
    if len(parts) == 1 and path.suffix == ".py":
        top = path.stem
    elif len(parts) == 2 and parts[1] == "__init__.py":
        top = parts[0]
    if top and top in _shadowable():
        return [
            Finding(
                path=change.path,
                kind="interpreter changed",
                detail=f"a new top-level module {top!r} shadows the installed one",
            )
        ]
    return []


@cache
def _shadowable() -> frozenset[str]:
    """Module names a new top-level file must not take: the stdlib and installed packages."""
    return frozenset(sys.stdlib_module_names) | frozenset(metadata.packages_distributions())
