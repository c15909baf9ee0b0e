"""The import graph of a neighbourhood and the call graph among slices.

Both are built from text with regular expressions, not from an AST: they must work on files
that do not parse, on slices rebuilt from the cache without parsing, and on thousands of
files in well under a second. They over-approximate a little (a call inside a string counts);
ranking only needs "near" and "calls", not a proof.

Module names are resolved against an index of every Python file's dotted names *and their
suffixes*, so ``import kelly`` in a ``src/``-layout project, or ``django.db`` inside a corpus
of many projects, still finds its file; ties go to the file nearest the importer.
"""

from __future__ import annotations

import keyword
import posixpath
import re
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final

_FROM_IMPORT: Final = re.compile(
    r"^[ \t]*from[ \t]+(\.*)([\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#;]+)", re.MULTILINE
)
_IMPORT: Final = re.compile(r"^[ \t]*import[ \t]+([^\n#;]+)", re.MULTILINE)
_CALL: Final = re.compile(r"(\.)?\b([A-Za-z_]\w*)\s*\(")
_DEF_NAME: Final = re.compile(r"\b(?:def|class)\s+(\w+)")
_NOT_CALLS: Final = frozenset(keyword.kwlist) | {"print", "super", "isinstance", "len", "self"}


def module_names(path: str) -> list[str]:
    """Dotted names a file can be imported as, longest first (every suffix of its path).

    >>> module_names("src/pkg/mod.py")
    ['src.pkg.mod', 'pkg.mod', 'mod']
    """
    stem = path.removesuffix(".py")
    parts = [p for p in stem.split("/") if p]
    if parts and parts[-1] == "__init__":
        parts.pop()
    return [".".join(parts[i:]) for i in range(len(parts))]


@lru_cache(maxsize=1 << 16)
def _module_names(path: str) -> frozenset[str]:
    """`module_names` as a set, cached: `ModuleIndex.resolve` asks for the same files' names
    thousands of times in one Map."""
    return frozenset(module_names(path))


def package_of(path: str) -> str:
    """The dotted package a file belongs to (for relative imports), as a path prefix."""
    return posixpath.dirname(path)


@dataclass
class ModuleIndex:
    """Files by the last component of their module name, for resolving imports.

    ``resolve("a.b.c")`` looks at the files whose module is ``c`` and keeps those whose dotted
    path ends with ``a.b.c``: one dict entry per file to build (cheap for 100k files), a
    short list to filter per import.
    """

    by_leaf: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def build(cls, files: Iterable[str]) -> ModuleIndex:
        index = cls()
        for path in files:
            head, _, name = path.removesuffix(".py").rpartition("/")
            if name == "__init__":
                name = head.rpartition("/")[2]
            if name:
                index.by_leaf.setdefault(name, []).append(path)
        return index

    def resolve(self, name: str, importer: str) -> str | None:
        """The file ``name`` refers to from ``importer``, preferring the nearest file."""
        leaf = name.rsplit(".", 1)[-1]
        found = [p for p in self.by_leaf.get(leaf, []) if name in _module_names(p)]
        if not found:
            return None
        if len(found) == 1:
            return found[0]
        here = importer.split("/")

        def shared(path: str) -> tuple[int, int]:
            parts = path.split("/")
            n = 0
            for a, b in zip(here, parts, strict=False):
                if a != b:
                    break
                n += 1
            return (-n, len(parts))

        return min(found, key=shared)


def imported_names(text: str, path: str) -> list[str]:
    """Dotted modules ``text`` (the source of ``path``) imports, relative ones made absolute.

    ``from a import b`` yields both ``a.b`` (b may be a module) and ``a``.
    """
    out: list[str] = []
    for m in _IMPORT.finditer(text):
        for item in m.group(1).split(","):
            name = item.split(" as ")[0].strip()
            if re.fullmatch(r"[\w.]+", name):
                out.append(name)
    for m in _FROM_IMPORT.finditer(text):
        dots, base, names = m.group(1), m.group(2), m.group(3)
        if dots:
            pkg = package_of(path).split("/") if package_of(path) else []
            up = len(dots) - 1
            if up > len(pkg):
                continue
            prefix = ".".join(pkg[: len(pkg) - up] if up else pkg)
            base = ".".join(p for p in (prefix, base) if p)
        if not base:
            continue
        out.append(base)
        for item in names.strip("() \t").replace("\n", " ").split(","):
            name = item.split(" as ")[0].strip()
            if re.fullmatch(r"\w+", name):
                out.append(f"{base}.{name}")
    return out


def resolve_imports(text: str, path: str, index: ModuleIndex) -> set[str]:
    """Files of the repository that ``path`` imports."""
    found: set[str] = set()
    for name in imported_names(text, path):
        target = index.resolve(name, path)
        if target is not None and target != path:
            found.add(target)
    return found


@dataclass
class ImportGraph:
    """Directed import edges among the files of a neighbourhood."""

    imports: dict[str, set[str]] = field(default_factory=dict)

    def add(self, importer: str, targets: Iterable[str]) -> None:
        self.imports.setdefault(importer, set()).update(targets)

    def importers(self) -> dict[str, set[str]]:
        rev: dict[str, set[str]] = {}
        for src, targets in self.imports.items():
            for t in targets:
                rev.setdefault(t, set()).add(src)
        return rev

    def distances(self, seeds: Iterable[str], limit: int = 3) -> dict[str, int]:
        """Undirected hop distance from the nearest seed, up to ``limit`` hops."""
        rev = self.importers()
        dist: dict[str, int] = {}
        queue: deque[str] = deque()
        for s in seeds:
            dist[s] = 0
            queue.append(s)
        while queue:
            node = queue.popleft()
            if dist[node] >= limit:
                continue
            for nxt in self.imports.get(node, set()) | rev.get(node, set()):
                if nxt not in dist:
                    dist[nxt] = dist[node] + 1
                    queue.append(nxt)
        return dist

    def in_degree(self) -> dict[str, int]:
        return {path: len(srcs) for path, srcs in self.importers().items()}


def called_names(text: str) -> tuple[set[str], set[str]]:
    """Names called in ``text``: ``(plain, attribute)`` -- ``f(...)`` and ``x.f(...)``.

    The names a slice defines (``def f(``, ``class C(``) are not calls.
    """
    defined = set(_DEF_NAME.findall(text))
    plain: set[str] = set()
    attr: set[str] = set()
    for m in _CALL.finditer(text):
        name = m.group(2)
        if name in _NOT_CALLS:
            continue
        if m.group(1):
            attr.add(name)
        elif name not in defined or text.count(name) > 1:
            plain.add(name)
    return plain, attr


@dataclass(frozen=True)
class Node:
    """A slice in the call graph: ``path::symbol``, its file, and the name it defines."""

    id: str
    path: str
    name: str
    is_method: bool


def call_edges(
    nodes: Iterable[Node],
    texts: Mapping[str, str],
    imports: Mapping[str, set[str]],
    *,
    max_fanout: int = 3,
) -> list[tuple[str, str]]:
    """Caller -> callee edges among ``nodes`` (ids into ``texts``).

    A call ``f()`` in file A resolves to definitions of ``f`` in A, else in the files A
    imports, else anywhere among the nodes when at most ``max_fanout`` define it. A call
    ``x.m()`` resolves the same way to methods named ``m``.
    """
    node_list = list(nodes)
    by_name: dict[str, list[Node]] = {}
    for n in node_list:
        by_name.setdefault(n.name, []).append(n)
    edges: set[tuple[str, str]] = set()
    for caller in node_list:
        plain, attr = called_names(texts.get(caller.id, ""))
        near = imports.get(caller.path, set())
        for name, want_method in [(n, False) for n in plain] + [(n, True) for n in attr]:
            # f() never means a method; x.f() may be a method or a module's function
            options = [
                d
                for d in by_name.get(name, [])
                if d.id != caller.id and (want_method or not d.is_method)
            ]
            if not options:
                continue
            local = [d for d in options if d.path == caller.path]
            imported = [d for d in options if d.path in near]
            chosen = local or imported or (options if len(options) <= max_fanout else [])
            edges.update((caller.id, d.id) for d in chosen)
    return sorted(edges)
