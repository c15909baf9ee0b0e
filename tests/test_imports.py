"""No import cycle among the package's modules: at import time, nor through the imports made
inside functions.

Module-level imports run when the module is imported; an import inside a function runs when
it is called; one under ``if TYPE_CHECKING:`` never runs and does not count. The graph is
built from the source with `ast`, so nothing is imported to check it.
"""

from __future__ import annotations

import ast
import pkgutil
from pathlib import Path

import pytest_orchestrator

PACKAGE = pytest_orchestrator.__name__


def _modules() -> dict[str, Path]:
    """Every module of the package, by dotted name, with its source file."""
    root = Path(pytest_orchestrator.__file__).parent
    found = {PACKAGE: root / "__init__.py"}
    for info in pkgutil.walk_packages([str(root)], prefix=f"{PACKAGE}."):
        relative = Path(*info.name.split(".")[1:])
        if info.ispkg:
            found[info.name] = root / relative / "__init__.py"
        else:
            found[info.name] = (root / relative).with_suffix(".py")
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports that run when the module is imported: top-level statements and those nested in
    ``if``/``try``/``with`` blocks, but not in functions, classes' methods, or under
    ``if TYPE_CHECKING:``."""
    return _imports(tree, in_functions=False)


_FUNCTION_BODIES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.For, ast.While, ast.AsyncWith)


def _imports(tree: ast.Module, *, in_functions: bool) -> list[ast.Import | ast.ImportFrom]:
    """The imports that ever run: `_module_level_imports`, and with ``in_functions`` also
    those inside function bodies (still not those under ``if TYPE_CHECKING:``)."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                found.append(node)
            elif isinstance(node, ast.If):
                if not _is_type_checking(node.test):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)
            elif isinstance(node, ast.With | ast.ClassDef):
                visit(node.body)
            elif in_functions and isinstance(node, _FUNCTION_BODIES):
                visit(node.body)
                visit(getattr(node, "orelse", []))

    visit(tree.body)
    return found


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module an ``from … import`` names (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def import_graph(*, in_functions: bool = False) -> dict[str, set[str]]:
    """Module -> the package modules it imports at import time (with ``in_functions``, also
    inside its functions).

    ``from a import b`` depends on ``a``, and on ``a.b`` when that is a module; importing
    ``a.b.c`` also imports its parent packages ``a`` and ``a.b``.
    """
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        targets: set[str] = set()
        for node in _imports(tree, in_functions=in_functions):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            else:
                source = _resolve(name, path.name == "__init__.py", node)
                targets.add(source)
                targets.update(f"{source}.{alias.name}" for alias in node.names)
        edges: set[str] = set()
        for target in targets:
            parts = target.split(".")
            for i in range(1, len(parts) + 1):
                prefix = ".".join(parts[:i])
                # a package this module is inside is imported before it: only an import
                # that names it is an edge
                inside = name.startswith(prefix + ".") and i < len(parts)
                if prefix in modules and prefix != name and not inside:
                    edges.add(prefix)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def test_every_module_is_seen() -> None:
    graph = import_graph()
    assert "pytest_orchestrator.session" in graph
    assert "pytest_orchestrator.phases.montecarlo.child.simulation" in graph
    assert "pytest_orchestrator.model" in graph["pytest_orchestrator.run"]


def test_no_import_cycle_at_import_time() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle at import time: " + " -> ".join(cycle or [])


def test_no_import_cycle_through_imports_inside_functions() -> None:
    """Deferred imports keep start-up light; they must not hide a cycle (a spine module that
    calls a phase which imports the spine module back)."""
    cycle = find_cycle(import_graph(in_functions=True))
    assert cycle is None, "import cycle through function-level imports: " + " -> ".join(cycle or [])


def test_the_cycle_finder_names_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_function_and_type_checking_imports_do_not_count() -> None:
    tree = ast.parse(
        "import os\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import json\n"
        "try:\n    import re\nexcept ImportError:\n    pass\n"
        "def f():\n    import sys\n"
    )
    names = [a.name for n in _module_level_imports(tree) for a in n.names]
    assert names == ["os", "TYPE_CHECKING", "re"]


def test_function_level_imports_count_when_asked() -> None:
    tree = ast.parse(
        "import os\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import json\n"
        "def f():\n    import sys\n    for _ in ():\n        import re\n"
    )
    names = [a.name for n in _imports(tree, in_functions=True) for a in n.names]
    assert names == ["os", "TYPE_CHECKING", "sys", "re"]
