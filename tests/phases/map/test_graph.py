"""Import graph and call graph, built from text."""

from __future__ import annotations

from pytest_orchestrator.phases.map.graph import (
    ImportGraph,
    ModuleIndex,
    Node,
    call_edges,
    called_names,
    module_names,
    resolve_imports,
)

FILES = ["src/pkg/__init__.py", "src/pkg/core.py", "src/pkg/util.py", "other/pkg/core.py"]


def test_module_names_are_every_suffix_of_the_path() -> None:
    """A file can be imported by any tail of its path (src layouts, monorepos)."""
    assert module_names("src/pkg/core.py") == ["src.pkg.core", "pkg.core", "core"]
    assert module_names("src/pkg/__init__.py") == ["src.pkg", "pkg"]


def test_imports_resolve_absolute_relative_and_from_names() -> None:
    """import a.b, from . import b and from a import b all resolve to files."""
    index = ModuleIndex.build(FILES)
    text = "import pkg.util\nfrom . import util\nfrom .core import thing\nfrom pkg import core\n"
    assert resolve_imports(text, "src/pkg/__init__.py", index) == {
        "src/pkg/util.py",
        "src/pkg/core.py",
    }


def test_ambiguous_modules_resolve_to_the_nearest_file() -> None:
    """Of two pkg/core.py, an importer gets the one in its own tree."""
    index = ModuleIndex.build(FILES)
    assert index.resolve("pkg.core", "other/pkg/x.py") == "other/pkg/core.py"
    assert index.resolve("pkg.core", "src/pkg/util.py") == "src/pkg/core.py"


def test_distances_follow_imports_both_ways() -> None:
    """Hop distance counts importers and imported files alike."""
    graph = ImportGraph()
    graph.add("a.py", {"b.py"})
    graph.add("c.py", {"b.py"})
    graph.add("d.py", {"c.py"})
    assert graph.distances({"a.py"}) == {"a.py": 0, "b.py": 1, "c.py": 2, "d.py": 3}
    assert graph.in_degree() == {"b.py": 2, "c.py": 1}


def test_called_names_separates_plain_and_attribute_calls() -> None:
    """f(x) is a plain call, obj.m() an attribute call; def lines and keywords are not calls."""
    plain, attr = called_names("def g(a):\n    if f(a):\n        return obj.m(a) + len(a)\n")
    assert plain == {"f"}
    assert attr == {"m"}


def test_call_edges_prefer_local_then_imported_definitions() -> None:
    """A call resolves in its own file first, then in the files it imports."""
    nodes = [
        Node("a.py::caller", "a.py", "caller", False),
        Node("a.py::helper", "a.py", "helper", False),
        Node("b.py::helper", "b.py", "helper", False),
        Node("b.py::target", "b.py", "target", False),
        Node("c.py::target", "c.py", "target", False),
    ]
    texts = {"a.py::caller": "def caller():\n    helper()\n    target()\n"}
    edges = call_edges(nodes, texts, {"a.py": {"b.py"}})
    assert edges == [("a.py::caller", "a.py::helper"), ("a.py::caller", "b.py::target")]
