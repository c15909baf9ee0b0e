"""Test changes that swap out the code under test.

When the command asks for test changes in words, a plan may edit the tests; the integrity
checks keep every test as strict as it was. A test can stay exactly as strict and still
stop testing the project: its name rebound to a local copy, the module it imports shadowed
by a file of the same name beside the tests, or the changed function patched over from a
conftest. The suite then passes whatever the change did to the real code. This module finds
those swaps in the diff:

* **a rebound name**: in a test file, a name bound to an import from the project is bound
  again to something else (a ``def``, an assignment, an import from elsewhere);
* **a shadowing module**: a new module outside any package whose name is one of the
  project's top-level modules (pytest puts a test file's folder, and the rootdir, on
  ``sys.path`` first, so ``tests/fee.py`` is what ``import fee`` finds);
* **a test turned away**: a test that used a name the change alters no longer does;
* **patched-over code**: test code that assigns, ``setattr``s, ``monkeypatch``es or
  ``mock.patch``es a name the change itself defines or alters, or writes ``sys.modules``;
* **code that knows it is tested**: code outside the tests that newly asks whether a test
  run is calling it (``PYTEST_CURRENT_TEST``, ``"pytest" in sys.modules``, ``sys.argv``),
  so the tests see one behaviour and users another.

Only what the change adds counts: a patch the base's tests already made is the base's own
test design. Everything here is pure: texts in, findings out.
"""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Final

from pytest_orchestrator.model import Finding
from pytest_orchestrator.phases.execute.integrity import FileChange, rename_identifiers

PATCH_CALLS: Final = frozenset({"setattr", "delattr", "patch", "object", "setitem", "dict"})
"""Calls that replace an attribute or an item: ``setattr``, ``monkeypatch.setattr``,
``mock.patch``, ``patch.object``, ``monkeypatch.setitem``, ``patch.dict``."""
TEST_MODULES: Final = frozenset({"pytest", "_pytest", "unittest", "xdist"})
"""Modules whose presence (``"pytest" in sys.modules``, ``in sys.argv[0]``) tells code that a
test run is calling it; so does any ``PYTEST_*`` environment variable."""


@dataclass(frozen=True)
class Project:
    """What the check needs to know of the repository around the changed files."""

    modules: Mapping[str, frozenset[str]]
    """Each top-level importable name of the project at the base -> the paths defining it."""
    changed: frozenset[str]
    """Names (the last dotted part) the change defines or alters in non-test code."""
    is_package: Callable[[str], bool]
    """Whether a folder of the attempt (``""`` the root) holds an ``__init__.py``."""


def findings(
    changes: list[FileChange],
    *,
    is_test: Callable[[str], bool],
    project: Project,
    renames: Mapping[str, str] | None = None,
) -> list[Finding]:
    """Every swap of the code under test the change makes."""
    names = dict(renames or {})
    found: list[Finding] = []
    for change in changes:
        if not change.path.endswith(".py"):
            continue
        if change.base is None and change.new is not None:
            found += _shadowing(change.path, project)
        if is_test(change.path) and change.new is not None:
            found += _swaps(change, project, names)
        elif change.new is not None:
            found += _test_detection(change)
    return found


def changed_definitions(base: str | None, new: str | None) -> set[str]:
    """Names of the module-level definitions and methods (and module-level assignments) that
    ``new`` adds or alters against ``base``; every name of an unparsable side counts."""
    old, now = _definitions(base), _definitions(new)
    if old is None or now is None:
        return {*(old or {}), *(now or {})}
    return {name for name, dump in now.items() if old.get(name) != dump} | (set(old) - set(now))


def top_level(paths: list[str], roots: list[str]) -> dict[str, frozenset[str]]:
    """Top-level importable names -> the files defining them: a module directly in one of
    ``roots`` (folders, ``""`` the repository root; the deepest that holds a file wins), or
    a package there (a folder with an ``__init__.py``)."""
    present = set(paths)
    found: dict[str, set[str]] = {}
    for path in paths:
        parts = PurePosixPath(path).parts
        for root in sorted(roots, key=len, reverse=True):
            prefix = PurePosixPath(root).parts if root else ()
            if parts[: len(prefix)] != prefix or len(parts) == len(prefix):
                continue
            rest = parts[len(prefix) :]
            package = "/".join([*prefix, rest[0], "__init__.py"])
            if len(rest) == 1:
                found.setdefault(PurePosixPath(rest[0]).stem, set()).add(path)
            elif package in present:
                found.setdefault(rest[0], set()).add(path)
            break
    return {name: frozenset(files) for name, files in found.items()}


# ---------------------------------------------------------------------------- shadowing


def _shadowing(path: str, project: Project) -> list[Finding]:
    pure = PurePosixPath(path)
    if pure.name == "conftest.py" or pure.name.startswith("test_") or pure.stem.endswith("_test"):
        return []
    folder = pure.parent
    if pure.name == "__init__.py":  # a package: shadows when its own folder is not in one
        name, folder = folder.name, folder.parent
    else:
        name = pure.stem
    here = "" if str(folder) == "." else str(folder)
    own = project.modules.get(name, frozenset())
    if not name or not own or project.is_package(here) or path in own:
        return []
    where = ", ".join(sorted(own)[:3])
    return [
        Finding(
            path=path,
            kind="code under test replaced",
            detail=f"a new module {name!r} outside any package shadows the project's "
            f"{name!r} ({where}) for the tests run from its folder",
        )
    ]


# ---------------------------------------------------------------------------- test detection


def _test_detection(change: FileChange) -> list[Finding]:
    new = _tree(change.new)
    if new is None:
        return []
    base = _tree(change.base)
    before = Counter(value for value, _ in _signals(base)) if base is not None else Counter()
    found = []
    for value, line in _signals(new):
        if before[value] > 0:
            before[value] -= 1
            continue
        found.append(
            Finding(
                path=change.path,
                line=line,
                kind="code under test replaced",
                detail=f"`{_short(value)}`: the code asks whether a test run is calling it, so "
                "the tests would see other behaviour than its users do",
            )
        )
    return found


def _signals(tree: ast.Module) -> Iterator[tuple[str, int]]:
    """Where ``tree`` tells whether it runs under the tests: a ``PYTEST_*`` name, a test
    module's name tested with ``in`` or looked up in ``sys.modules``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and str(node.value).startswith("PYTEST_"):
            yield str(node.value), node.lineno
        elif isinstance(node, ast.Compare) and _module_name(node.left):
            if any(isinstance(op, ast.In | ast.NotIn) for op in node.ops):
                yield ast.unparse(node), node.lineno
        elif isinstance(node, ast.Subscript | ast.Call):
            looked_up = node.value if isinstance(node, ast.Subscript) else node.func
            key = node.slice if isinstance(node, ast.Subscript) else next(iter(node.args), None)
            if "sys.modules" in ast.unparse(looked_up) and key is not None and _module_name(key):
                yield ast.unparse(node), node.lineno


def _module_name(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value in TEST_MODULES


# ---------------------------------------------------------------------------- test files


def _swaps(change: FileChange, project: Project, renames: dict[str, str]) -> Iterator[Finding]:
    new = _tree(change.new)
    if new is None:
        return  # integrity reports a test file that does not parse
    base = _tree(change.base)
    before = _Scan(base, project, renames, {}) if base is not None else None
    after = _Scan(new, project, {}, before.imported if before else {})
    for name, count in after.rebinds.items():
        if count > (before.rebinds[name] if before else 0):
            line, what = after.where[name]
            yield Finding(
                path=change.path,
                line=line,
                kind="code under test replaced",
                detail=f"{name!r}, imported from the project ({after.imported[name]}), is "
                f"bound again to {what}: the tests no longer use the project's {name!r}",
            )
    if base is not None:
        yield from _turned_away(change.path, base, new, project, renames)
    for target, count in after.patches.items():
        if count > (before.patches[target] if before else 0):
            line, _ = after.where[target]
            altered = "" if target == "sys.modules" else ", a name the change alters"
            yield Finding(
                path=change.path,
                line=line,
                kind="code under test replaced",
                detail=f"the tests replace {target}{altered}",
            )


def _turned_away(
    path: str, base: ast.Module, new: ast.Module, project: Project, renames: dict[str, str]
) -> Iterator[Finding]:
    """Tests that used a name the change alters at the base and no longer do."""
    now = dict(_tests(new))
    for old_name, (_, used) in _tests(base):
        name = rename_identifiers(old_name, renames)
        if name not in now:
            continue  # a deleted test is integrity's finding
        dropped = {rename_identifiers(u, renames) for u in used} & project.changed
        line, still = now[name]
        for gone in sorted(dropped - still):
            yield Finding(
                path=path,
                line=line,
                kind="code under test replaced",
                detail=f"{name} no longer uses {gone!r}, which the change alters",
            )


def _tests(tree: ast.Module) -> Iterator[tuple[str, tuple[int, set[str]]]]:
    """Each test function (``test*``, in ``Test*`` classes too) -> its line and the names it
    uses (decorators included: ``parametrize`` may pass the function under test)."""
    for node in tree.body:
        functions = node.body if isinstance(node, ast.ClassDef) else [node]
        prefix = f"{node.name}." if isinstance(node, ast.ClassDef) else ""
        for function in functions:
            if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef) and (
                function.name.startswith("test")
            ):
                used = {
                    n.id if isinstance(n, ast.Name) else n.attr
                    for n in ast.walk(function)
                    if isinstance(n, ast.Name | ast.Attribute)
                }
                yield f"{prefix}{function.name}", (function.lineno, used)


class _Scan:
    """The swaps one test file makes, counted, so that the base's own can be subtracted.

    ``known``: the project imports the base version of the file had, so a plan that drops
    ``from fee import fee`` and defines ``fee`` itself is still seen rebinding it.
    """

    def __init__(
        self,
        tree: ast.Module,
        project: Project,
        renames: dict[str, str],
        known: Mapping[str, str],
    ) -> None:
        self.project = project
        self.renames = renames
        self.imported: dict[str, str] = dict(known)  # local name -> dotted project path
        self.rebinds: Counter[str] = Counter()
        self.patches: Counter[str] = Counter()
        self.where: dict[str, tuple[int, str]] = {}
        for node, _ in _statements(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                self.imported |= self._project_imports(node)
        for node, scope in _statements(tree):
            for name, what in _bindings(node, scope):
                local = self._renamed(name)
                if local in self.imported and local not in self._project_imports(node):
                    self.rebinds[local] += 1
                    self.where.setdefault(local, (node.lineno, what))
        for child in ast.walk(tree):
            for target in self._patched(child):
                self.patches[target] += 1
                self.where.setdefault(target, (getattr(child, "lineno", 0), ""))

    def _renamed(self, text: str) -> str:
        return rename_identifiers(text, self.renames)

    def _in_project(self, module: str | None) -> bool:
        return bool(module) and str(module).split(".")[0] in self.project.modules

    def _project_imports(self, node: ast.stmt) -> dict[str, str]:
        """Local name -> dotted path, for what ``node`` imports from the project."""
        out: dict[str, str] = {}
        if isinstance(node, ast.ImportFrom) and not node.level and self._in_project(node.module):
            for alias in node.names:
                out[self._renamed(alias.asname or alias.name)] = self._renamed(
                    f"{node.module}.{alias.name}"
                )
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if self._in_project(alias.name):
                    local = alias.asname or alias.name.split(".")[0]
                    out[self._renamed(local)] = self._renamed(alias.name if alias.asname else local)
        return out

    def _patched(self, node: ast.AST) -> Iterator[str]:
        if isinstance(node, ast.Assign | ast.Delete):
            for target in node.targets:
                yield from self._target(target)
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            yield from self._target(node.target)
        elif isinstance(node, ast.Call) and _called(node) in PATCH_CALLS and node.args:
            yield from self._call(node)

    def _target(self, target: ast.expr) -> Iterator[str]:
        if isinstance(target, ast.Subscript) and ast.unparse(target.value) == "sys.modules":
            yield "sys.modules"
        elif isinstance(target, ast.Attribute) and target.attr in self.project.changed:
            root = self._dotted(target.value)
            if root:
                yield f"{root}.{target.attr}"
        elif isinstance(target, ast.Tuple | ast.List):
            for element in target.elts:
                yield from self._target(element)

    def _call(self, call: ast.Call) -> Iterator[str]:
        first = call.args[0]
        if ast.unparse(first) == "sys.modules" or (
            isinstance(first, ast.Constant) and first.value == "sys.modules"
        ):
            yield "sys.modules"
        elif isinstance(first, ast.Constant) and isinstance(first.value, str):
            # monkeypatch.setattr("pkg.mod.name", …), mock.patch("pkg.mod.name")
            module, _, attr = first.value.rpartition(".")
            if self._in_project(module) and attr in self.project.changed:
                yield self._renamed(first.value)
        elif len(call.args) > 1:
            attribute = call.args[1]
            if isinstance(attribute, ast.Constant) and attribute.value in self.project.changed:
                root = self._dotted(first)
                if root:
                    yield f"{root}.{attribute.value}"

    def _dotted(self, node: ast.expr) -> str | None:
        """The dotted project path an expression names (``mod.Class``), or None."""
        chain: list[str] = []
        while isinstance(node, ast.Attribute):
            chain.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        head = self.imported.get(self._renamed(node.id))
        if head is None:
            return None
        return ".".join([head, *reversed(chain)])


def _statements(tree: ast.Module) -> Iterator[tuple[ast.stmt, str]]:
    """Every statement with its scope: ``module`` (``if``/``try``/``with`` blocks included),
    ``class`` (directly in a class body) or ``function``."""

    def walk(body: list[ast.stmt], scope: str) -> Iterator[tuple[ast.stmt, str]]:
        for node in body:
            yield node, scope
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                inner = "function"
            elif isinstance(node, ast.ClassDef):
                inner = "class"
            else:
                inner = scope
            for name in ("body", "orelse", "finalbody"):
                block = getattr(node, name, None)
                if isinstance(block, list):
                    yield from walk([s for s in block if isinstance(s, ast.stmt)], inner)
            for handler in getattr(node, "handlers", []):
                yield from walk(handler.body, inner)
            for case in getattr(node, "cases", []):
                yield from walk(case.body, inner)

    yield from walk(tree.body, "module")


def _bindings(node: ast.stmt, scope: str) -> Iterator[tuple[str, str]]:
    """Names ``node`` binds in the module's namespace or a function's, with what they are
    bound to: at module level every binding; in a function a ``def``, ``class``, import or
    ``lambda`` (a local result named like the function is not a swap); in a class none."""
    if scope == "class":
        return
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        yield node.name, "a function defined in the test file"
    elif isinstance(node, ast.ClassDef):
        yield node.name, "a class defined in the test file"
    elif isinstance(node, ast.Import | ast.ImportFrom):
        source = "." * getattr(node, "level", 0) + (getattr(node, "module", None) or "")
        for alias in node.names:
            origin = source or alias.name
            yield (alias.asname or alias.name.split(".")[0]), f"an import from {origin}"
    elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
        value = node.value
        if scope == "function" and not isinstance(value, ast.Lambda):
            return
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            for name in _names(target):
                yield name, f"`{_short(ast.unparse(node))}`"


def _names(target: ast.expr) -> Iterator[str]:
    """The names an assignment target binds (``a``, ``a, *b``; not ``a.x`` or ``a[0]``)."""
    if isinstance(target, ast.Name):
        yield target.id
    elif isinstance(target, ast.Starred):
        yield from _names(target.value)
    elif isinstance(target, ast.Tuple | ast.List):
        for element in target.elts:
            yield from _names(element)


def _called(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _tree(text: str | None) -> ast.Module | None:
    if text is None:
        return None
    try:
        return ast.parse(text)
    except SyntaxError:
        return None


def _definitions(text: str | None) -> dict[str, str] | None:
    """Module-level definitions and assignments, and methods, by name -> their AST dump."""
    if text is None:
        return {}
    tree = _tree(text)
    if tree is None:
        return None
    out: dict[str, str] = {}
    for name, node in _defined(tree.body, in_class=False):
        out[name] = out.get(name, "") + ast.dump(node)
    return out


def _defined(body: list[ast.stmt], *, in_class: bool) -> Iterator[tuple[str, ast.stmt]]:
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield node.name, node
            if isinstance(node, ast.ClassDef) and not in_class:
                yield from _defined(node.body, in_class=True)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for name in _names(target):
                    yield name, node


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
