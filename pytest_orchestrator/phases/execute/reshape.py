"""The deterministic refactorings beyond rename: move a definition, rename a module, change
a signature, inline, extract. rope does each where it does the job (it resolves imports and
call sites the way Python does); what rope would do with a larger diff than needed — adding
a parameter with a default, which needs no call site touched — is done here on the source.

Each function takes the worktree root and a ``check`` called with every path about to be
written (the ops refuse symlinks and paths outside), and returns the files it changed.
"""

from __future__ import annotations

import ast
import difflib
import keyword
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from pytest_orchestrator.errors import EditError, OrchestratorError
from pytest_orchestrator.phases.execute import extraction, imports, mentions, signature
from pytest_orchestrator.phases.execute.refactor import (
    Definition,
    files_mentioning,
    keep_sorted,
    locate,
    module_of,
    rg_binary,
    rope_project,
)
from pytest_orchestrator.repo.files import atomic_write

if TYPE_CHECKING:
    from pytest_orchestrator.plan import Plan

Check = Callable[[str], object]


def identifier(name: str, what: str) -> str:
    if not name.isidentifier() or keyword.iskeyword(name):
        raise EditError(f"{name!r} is not a valid Python identifier: choose another {what}")
    return name


def definition(root: Path, symbol: str, path: str | None) -> Definition:
    """The one definition of ``symbol`` (`refactor.locate`'s checks and messages), without
    a new name to check."""
    return locate(root, symbol, "_orchestrate_placeholder", path)


@contextmanager
def _rope(root: Path, what: str) -> Iterator[Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        project = rope_project(root)
        # `from new.module import name`, as people write it (not `new.module.name`)
        project.prefs.imports.preferred_import_style = "from-global"
        try:
            yield project
        except OrchestratorError:
            raise
        except Exception as exc:  # rope's RefactoringError and friends
            raise EditError(f"rope could not {what}: {exc}") from exc
        finally:
            project.close()


def _apply(project: Any, changes: Any, check: Check) -> list[str]:
    """Check every path rope would write (a moved resource's new path too), then write:
    with the blank lines rope drops on its own (after a docstring, before an import) kept,
    so the diff holds only the refactoring."""
    paths: list[str] = []
    for change in changes.changes:
        if hasattr(change, "new_contents") and change.resource.exists():
            change.new_contents = keep_blank_lines(change.resource.read(), change.new_contents)
        paths.append(change.resource.path)
        new = getattr(change, "new_resource", None)
        if new is not None:
            paths.append(new.path)
            if change.resource.is_folder():  # a package: every file in it moves
                folder = Path(change.resource.real_path)
                inner = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
                inner = [p for p in inner if "__pycache__" not in p]
                paths += [f"{change.resource.path}/{p}" for p in inner]
                paths += [f"{new.path}/{p}" for p in inner]
    for rel in paths:
        check(rel)
    project.do(changes)
    return sorted(set(paths) - {c.resource.path for c in changes.changes if c.resource.is_folder()})


def move(
    root: Path, symbol: str, to: str, path: str | None, check: Check, *, reexport: bool
) -> list[str]:
    """Move a module-level function, class or constant to the module file ``to`` (created
    when missing, with its packages' ``__init__.py``); imports follow across the repository.
    ``reexport``: the old module keeps importing the name, so ``old.name`` still works."""
    from rope.refactor.move import create_move

    found = check_move(root, symbol, to, path, reexport=reexport)
    authored = glued((root / found.path).read_text(encoding="utf-8"))
    created = _create_module(root, to, check)
    with _rope(root, f"move {found.qualname!r} to {to}") as project:
        project.validate()
        mover = create_move(project, project.get_resource(found.path), found.offset)
        changes = mover.get_changes(project.get_resource(to))
        if not reexport:  # the other files' imports are rewritten minimally by `imports`
            changes.changes = [c for c in changes.changes if c.resource.path in {found.path, to}]
        changed = _apply(project, changes, check)
    source = root / found.path
    atomic_write(source, spaced(source.read_text(encoding="utf-8"), authored))
    if to in created:  # the whole file is rope's: only the imports the moved code reads
        dest = root / to
        atomic_write(dest, imports.drop_unused(dest.read_text(encoding="utf-8")))
    changed += _follow_move(root, found, to, check, reexport=reexport)
    if reexport:
        source = root / found.path
        text = source.read_text(encoding="utf-8")
        line = f"from {module_of(root, to)} import {found.qualname}  # re-exported: moved\n"
        if line.split("  #")[0] not in text:
            check(found.path)
            atomic_write(source, text.rstrip("\n") + "\n\n\n" + line)
    return sorted({*changed, *created, found.path})


def _follow_move(
    root: Path, found: Definition, to: str, check: Check, *, reexport: bool
) -> list[str]:
    """What rope leaves behind after a move (`imports.follow`): imports of the old location
    inside functions, aliased or through the module, and the old module's ``__all__`` entry
    when it no longer binds the name. With a re-export the old location stays valid."""
    if reexport:
        return []
    old, new = module_of(root, found.path), module_of(root, to)
    name = found.qualname
    files = sorted(set(files_mentioning(root, name)) - {to})
    for rel in files:
        check(rel)
    changed = imports.follow(root, files, {f: module_of(root, f) for f in files}, old, new, name)
    source = root / found.path
    text = source.read_text(encoding="utf-8")
    bound = {n for node in ast.parse(text).body for n in _bound(node)}
    bound |= {
        (a.asname or a.name).split(".")[0]
        for node in ast.parse(text).body
        if isinstance(node, ast.Import | ast.ImportFrom)
        for a in node.names
    }
    if name not in bound:
        dropped = imports.drop_from_all(text, name)
        if dropped != text:
            check(found.path)
            atomic_write(source, dropped)
            changed.append(found.path)
    return changed


def glued(text: str) -> dict[int, tuple[str, str]]:
    """The module-body statements that follow the line above with no blank line: index ->
    (that line, the statement's first line)."""
    tree = ast.parse(text)
    lines = text.splitlines()
    out = {}
    for i, node in enumerate(tree.body):
        first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
        above = lines[first - 2].strip() if first >= 2 else ""
        if above and not above.startswith("#"):
            out[i] = (above, lines[first - 1].strip())
    return out


def spaced(text: str, keep: dict[int, tuple[str, str]] | None = None) -> str:
    """``text`` with two blank lines before each top-level definition that rope left glued
    to the line above (an import it put where the moved definition was), and one after a
    module docstring followed directly by code (PEP 8, which linters check). A pair of
    lines the author wrote glued (``keep``, from `glued` before the move) stays so."""
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    inserts: dict[int, str] = {}
    authored = set((keep or {}).values())
    for i, pair in glued(text).items():
        if pair in authored:
            continue
        node = tree.body[i]
        first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            inserts[first - 1] = "\n\n"
        elif i == 1 and ast.get_docstring(tree) is not None:
            inserts[first - 1] = "\n"
    for index in sorted(inserts, reverse=True):
        lines.insert(index, inserts[index])
    return "".join(lines)


def check_move(
    root: Path, symbol: str, to: str, path: str | None, *, reexport: bool = False
) -> Definition:
    """The definition to move, or a clear `EditError` before anything is written: a method,
    a destination that is not a module file, or a move after which the two modules would
    import each other (the moved code needs a name the old module keeps, and the old module
    still uses what moved)."""
    found = definition(root, symbol, path)
    if "." in found.qualname:
        raise EditError(f"{found.qualname!r} is a method: only module-level definitions move")
    if not to.endswith(".py"):
        raise EditError(f"the destination {to!r} must be a module file (ending in .py)")
    if to == found.path:
        raise EditError(f"{found.qualname!r} is already defined in {to}")
    tree = ast.parse((root / found.path).read_text(encoding="utf-8"))
    moved = [
        n
        for n in tree.body
        if n.lineno == found.line
        or (
            isinstance(n, ast.Assign | ast.AnnAssign)
            and n.lineno <= found.line <= (n.end_lineno or 0)
        )
    ]
    others = [n for n in tree.body if n not in moved]
    kept = {
        name for n in others if not isinstance(n, ast.Import | ast.ImportFrom) for name in _bound(n)
    }
    used_by_moved = {x.id for n in moved for x in ast.walk(n) if isinstance(x, ast.Name)}
    needed = sorted(kept & used_by_moved)
    still_used = any(
        isinstance(x, ast.Name) and x.id == found.qualname for n in others for x in ast.walk(n)
    )
    if needed and reexport:
        raise EditError(
            f"a re-export of {found.qualname!r} would make {found.path} and {to} import each "
            f"other ({found.qualname} needs {', '.join(needed)} from {found.path}): move "
            "without the re-export, or move those names too"
        )
    if needed and still_used:
        source, dest = module_of(root, found.path), module_of(root, to)
        raise EditError(
            f"moving {found.qualname!r} to {to} would make {source} and {dest} import each "
            f"other ({found.qualname} needs {', '.join(needed)}, which stays in {found.path}, "
            f"and {found.path} still uses {found.qualname}): move {', '.join(needed)} first, "
            "or choose what to move so that one module needs the other"
        )
    return found


def _bound(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [node.name]
    targets = (
        node.targets
        if isinstance(node, ast.Assign)
        else ([node.target] if isinstance(node, ast.AnnAssign | ast.AugAssign) else [])
    )
    return [t.id for t in targets if isinstance(t, ast.Name)]


def keep_blank_lines(before: str, after: str) -> str:
    """``after`` with every run of blank lines that was only deleted (nothing else changed
    beside it) put back, and no more trailing blank lines than ``before`` had."""
    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    ops = difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes()
    out: list[str] = []
    for i, (tag, a1, a2, b1, b2) in enumerate(ops):
        only_blank = all(not line.strip() for line in old[a1:a2])
        between_equal = all(ops[j][0] == "equal" for j in (i - 1, i + 1) if 0 <= j < len(ops))
        if tag == "delete" and only_blank and between_equal and 0 < i < len(ops) - 1:
            out += old[a1:a2]
        else:
            out += new[b1:b2]
    text = "".join(out)
    if text.strip() and before.endswith("\n") and not before.endswith("\n\n"):
        text = text.rstrip("\n") + "\n"
    return text


def _create_module(root: Path, to: str, check: Check) -> list[str]:
    """The destination module, and a package (``__init__.py``) for each folder that does not
    exist yet; existing folders are left as they are (a ``src/`` root is no package)."""
    created = []
    parts = to.split("/")
    for i in range(1, len(parts)):
        folder = root.joinpath(*parts[:i])
        if not folder.exists():
            rel = "/".join([*parts[:i], "__init__.py"])
            check(rel)
            folder.mkdir()
            atomic_write(folder / "__init__.py", "")
            created.append(rel)
    target = root / to
    if not target.exists():
        check(to)
        atomic_write(target, "")
        created.append(to)
    return created


def rename_module(root: Path, path: str, new_name: str, check: Check) -> list[str]:
    """Rename a module file or a package folder; every import of it follows."""
    from rope.refactor.rename import Rename

    identifier(new_name, "module name")
    target = root / path
    if not (target.is_file() and path.endswith(".py")) and not (target / "__init__.py").is_file():
        raise EditError(f"{path!r} is neither a module file (.py) nor a package folder")
    sibling = target.with_name(new_name + (".py" if target.is_file() else ""))
    if sibling.exists() or target.with_name(new_name).exists():
        raise EditError(f"{sibling.relative_to(root)} already exists: choose another name")
    old_module = module_of(root, path)
    with _rope(root, f"rename the module {path!r}") as project:
        resource = project.get_resource(path)
        changed = _apply(project, Rename(project, resource, None).get_changes(new_name), check)
    old_name = PurePosixPath(path).name.removesuffix(".py")
    keep_sorted(root, [rel for rel in changed if (root / rel).is_file()], old_name, new_name)
    new_module = ".".join([*old_module.split(".")[:-1], new_name])
    texts = mentions.update_module(root, old_module, new_module, rg_binary(), check)
    return sorted({*changed, *texts.files})


def _function(
    root: Path, symbol: str, path: str | None
) -> tuple[Definition, ast.FunctionDef | ast.AsyncFunctionDef, str]:
    found = definition(root, symbol, path)
    text = (root / found.path).read_text(encoding="utf-8")
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.lineno == found.line:
            return found, node, text
    raise EditError(f"{found.qualname!r} is not a function: only functions have signatures")


def add_parameter(
    root: Path, symbol: str, param: str, default: str, path: str | None, check: Check
) -> list[str]:
    """Add ``param=default`` to a function. No call site changes: the default keeps every
    existing call meaning what it meant. Before ``**kwargs`` when there is one, else last."""
    identifier(param, "parameter name")
    try:
        value = ast.parse(default, mode="eval").body
    except SyntaxError:
        raise EditError(f"the default {default!r} is not a Python expression") from None
    found, node, text = _function(root, symbol, path)
    args = node.args
    names = [a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]]
    names += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
    if param in names:
        raise EditError(f"{found.qualname!r} already has a parameter {param!r}")
    spelled = f"{param}={default}"
    kind = type(value.value) if isinstance(value, ast.Constant) else None
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    annotated = node.returns is not None and all(
        a.annotation is not None for a in every if a.arg not in ("self", "cls")
    )
    if annotated and kind in (bool, int, float, str, bytes):  # typed code stays typed
        spelled = f"{param}: {kind.__name__} = {default}"
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))

    def offset(line: int, col: int) -> int:
        return starts[line - 1] + len(
            text[starts[line - 1] :].encode()[:col].decode(errors="ignore")
        )

    if args.kwarg is not None:
        at = text.rindex("**", 0, offset(args.kwarg.lineno, args.kwarg.col_offset))
        insert = f"{spelled}, "
    else:
        parts: list[ast.AST] = [*args.posonlyargs, *args.args, *args.defaults, *args.kwonlyargs]
        parts += [d for d in args.kw_defaults if d is not None]
        parts += [a for a in (args.vararg,) if a is not None]
        parts += [a.annotation for a in [*args.args, *args.kwonlyargs] if a.annotation]
        if parts:
            ends = [
                (getattr(n, "end_lineno", 1) or 1, getattr(n, "end_col_offset", 0)) for n in parts
            ]
            at = offset(*max(ends))
            insert = f", {spelled}"
        else:
            at = text.index("(", offset(node.lineno, node.col_offset)) + 1
            insert = spelled
    check(found.path)
    atomic_write(root / found.path, text[:at] + insert + text[at:])
    return [found.path]


def rename_parameter(
    root: Path, symbol: str, param: str, new_name: str, path: str | None, check: Check
) -> list[str]:
    """Rename a parameter in the definition, its body, and every call passing it by keyword."""
    from rope.refactor.rename import Rename

    identifier(new_name, "parameter name")
    found, node, text = _function(root, symbol, path)
    arg = _param(found, node, param)
    taken = {a.arg for a in ast.walk(node) if isinstance(a, ast.arg)}
    taken |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    if new_name in taken:
        raise EditError(f"{new_name!r} is already a name inside {found.qualname!r}")
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    at = starts[arg.lineno - 1] + arg.col_offset
    with _rope(root, f"rename the parameter {param!r}") as project:
        resource = project.get_resource(found.path)
        return _apply(project, Rename(project, resource, at).get_changes(new_name), check)


def _param(found: Definition, node: ast.FunctionDef | ast.AsyncFunctionDef, param: str) -> ast.arg:
    args = node.args
    for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs]:
        if arg.arg == param:
            return arg
    raise EditError(f"{found.qualname!r} has no parameter {param!r}")


def remove_parameter(
    root: Path, symbol: str, param: str, path: str | None, check: Check
) -> list[str]:
    """Remove a parameter the body never uses; every call site drops the argument
    (`signature.plan_removal`, which refuses when a call cannot be seen)."""
    removal = signature.plan_removal(root, symbol, param, path)
    for rel in removal.texts:
        check(rel)
    for rel, text in removal.texts.items():
        atomic_write(root / rel, text)
    return sorted(removal.texts)


def check_inline(root: Path, symbol: str, path: str | None) -> Definition:
    """The definition to inline, or a clear `EditError`: a name the tests use would, inlined
    into them, no longer be what they check (and the gate would be easier to pass); and
    what rope refuses (a function with statements after a ``return``) is refused here, when
    planning, not after Monte Carlo and the baseline run."""
    from pytest_orchestrator.repo.files import is_test_path

    found = definition(root, symbol, path)
    name = found.qualname.split(".")[-1]
    tests = [rel for rel in files_mentioning(root, name) if is_test_path(rel)]
    if tests:
        raise EditError(
            f"{found.qualname!r} is used in tests ({', '.join(tests[:3])}): inlined there, the "
            "tests would no longer check it; refused (inline it where only code uses it)"
        )
    tree = ast.parse((root / found.path).read_text(encoding="utf-8"))
    node = next((n for n in tree.body if getattr(n, "lineno", 0) == found.line), None)
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        inner = [n for s in node.body for n in ast.walk(s)]
        nested = [n for n in inner if isinstance(n, ast.FunctionDef)]
        if any(isinstance(n, ast.Yield | ast.YieldFrom) for n in inner) and not nested:
            raise EditError(
                f"{found.qualname!r} is a generator function: inlined, its `yield` would turn "
                "each caller into a generator (run lazily, its `return` values lost); refused"
            )
        if nested:
            raise EditError(
                f"{found.qualname!r} defines the function {nested[0].name!r}: inlined, its "
                "`return` would be rewritten as the outer function's (rope); refused"
            )
    from rope.refactor.inline import create_inline

    with _rope(root, f"inline {found.qualname!r}") as project:  # rope's own refusals, now
        create_inline(project, project.get_resource(found.path), found.offset).get_changes()
    return found


def inline(
    root: Path, symbol: str, path: str | None, check: Check, within: str | None = None
) -> list[str]:
    """Inline a function (every call replaced by its body, the definition removed) or a
    variable (every use replaced by its value): module-level, or local to ``within``."""
    from rope.refactor.inline import create_inline

    if within is not None:
        return _inline_local(root, symbol, within, path, check)
    found = check_inline(root, symbol, path)
    with _rope(root, f"inline {found.qualname!r}") as project:
        inliner = create_inline(project, project.get_resource(found.path), found.offset)
        return _apply(project, inliner.get_changes(), check)


def check_local(
    root: Path, name: str, within: str, path: str | None
) -> tuple[Definition, ast.FunctionDef | ast.AsyncFunctionDef, str, ast.Assign]:
    """The function and the one plain assignment of its local ``name``; else `EditError`."""
    found, node, text = _function(root, within, path)
    stores = [
        n
        for n in ast.walk(node)
        if isinstance(n, ast.Name) and n.id == name and not isinstance(n.ctx, ast.Load)
    ]
    assigns = [
        stmt
        for stmt in ast.walk(node)
        if isinstance(stmt, ast.Assign)
        and len(stmt.targets) == 1
        and isinstance(stmt.targets[0], ast.Name)
        and stmt.targets[0].id == name
    ]
    if len(stores) != 1 or len(assigns) != 1:
        raise EditError(
            f"{name!r} is bound {len(stores)} times in {found.qualname!r}: "
            "only a variable assigned once, by a plain `name = value`, can be inlined"
        )
    return found, node, text, assigns[0]


def _inline_local(root: Path, name: str, within: str, path: str | None, check: Check) -> list[str]:
    """Inline a local variable assigned once: every later use becomes its value, in
    parentheses unless it is an atom. (rope drops the parentheses: ``a * (b - c) / d`` for
    ``a * x`` with ``x = (b - c) / d``, which floats round differently.)"""
    found, node, text, assign = check_local(root, name, within, path)
    lines = text.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))

    def at(line: int, col: int) -> int:
        return starts[line - 1] + len(lines[line - 1].encode()[:col].decode(errors="ignore"))

    value = ast.get_source_segment(text, assign.value) or ""
    atom = isinstance(assign.value, ast.Name | ast.Constant | ast.Attribute | ast.Call)
    atom = atom or isinstance(assign.value, ast.Subscript | ast.List | ast.Tuple | ast.Dict)
    replacement = value if atom else f"({value})"
    uses = [
        n
        for n in ast.walk(node)
        if isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load)
    ]
    if any((u.lineno, u.col_offset) < (assign.lineno, assign.col_offset) for u in uses):
        raise EditError(f"{name!r} is used before its assignment in {found.qualname!r}")
    edits = [
        (at(u.lineno, u.col_offset), at(u.lineno, u.end_col_offset or 0), replacement) for u in uses
    ]
    edits.append((starts[assign.lineno - 1], starts[assign.end_lineno or assign.lineno], ""))
    for begin, end, new in sorted(edits, reverse=True):
        text = text[:begin] + new + text[end:]
    check(found.path)
    atomic_write(root / found.path, text)
    return [found.path]


def extract(root: Path, path: str, start: int, end: int, new_name: str, check: Check) -> list[str]:
    """Extract lines ``start``..``end`` (1-based, inclusive) of ``path`` into a new function
    (a method when they use the enclosing method's ``self``): `extraction.extract` works out
    the parameters and exactly the return values the rest of the function reads."""
    done = check_extract(root, path, start, end, new_name)
    check(path)
    atomic_write(root / path, done.text)
    return [path]


def check_extract(
    root: Path, path: str, start: int, end: int, new_name: str
) -> extraction.Extraction:
    """The extraction, computed without writing; a clear `EditError` when it cannot be
    done (the planner calls this, so a bad range is refused before anything runs)."""
    identifier(new_name, "function name")
    try:
        text = (root / path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EditError(f"cannot read {path}: {exc}") from None
    lines = text.splitlines(keepends=True)
    if not 1 <= start <= end <= len(lines):
        raise EditError(f"lines {start}-{end} are not in {path} ({len(lines)} lines)")
    try:
        return extraction.extract(text, path, start, end, new_name)
    except SyntaxError as exc:
        raise EditError(f"{path} does not parse: {exc}") from None


def block_lines(root: Path, path: str, symbol: str, block: str) -> tuple[int, int]:
    """The lines of the statement block introduced by a comment ``# block`` inside the
    function ``symbol``: from the line after the comment to the last line before a blank
    line or the end of the function (the "named statement block")."""
    found = definition(root, symbol, path)
    lines = (root / found.path).read_text(encoding="utf-8").splitlines()
    for i in range(found.line, found.end_line):
        if lines[i].strip().lstrip("#").strip() == block and lines[i].lstrip().startswith("#"):
            end = i + 1
            while end < found.end_line and lines[end].strip():
                end += 1
            if end == i + 1:
                break
            return i + 2, end
    raise EditError(f"no comment '# {block}' opening a block inside {found.qualname!r}")


def doctest_module(root: Path, rel: str) -> str:
    """The dotted name pytest gives a module's doctests (its package chain, found the way
    pytest's default import mode finds it: up through folders holding ``__init__.py``)."""
    path = PurePosixPath(rel)
    parts = [] if path.stem == "__init__" else [path.stem]
    folder = path.parent
    while str(folder) != "." and (root / folder / "__init__.py").is_file():
        parts.insert(0, folder.name)
        folder = folder.parent
    return ".".join(parts)


def moved_test_ids(root: Path, plan: Plan) -> dict[str, str]:
    """Base test-id prefix -> its new form, for the doctests a move or a module rename
    carries to another file (``pkg/__init__.py::pkg.f`` -> ``pkg/text.py::pkg.text.f``)."""
    out: dict[str, str] = {}
    for step in plan.steps:
        args = step.args
        if step.op == "move_symbol" and args.get("path") and args.get("to"):
            name = str(args["symbol"]).split(".")[-1]
            old, new = str(args["path"]), str(args["to"])
            out[f"{old}::{doctest_module(root, old)}.{name}"] = (
                f"{new}::{doctest_module(root, new)}.{name}"
            )
        elif step.op == "rename_module" and str(args.get("path", "")).endswith(".py"):
            old = str(args["path"])
            new = str(PurePosixPath(old).with_name(f"{args['new_name']}.py"))
            out[f"{old}::{doctest_module(root, old)}"] = f"{new}::{doctest_module(root, new)}"
        elif step.op == "rename_module" and args.get("path"):  # a package folder
            old = str(args["path"])
            new = str(PurePosixPath(old).with_name(str(args["new_name"])))
            inner = sorted((root / new).rglob("*.py")) if (root / new).is_dir() else []
            for path in inner:
                rel = path.relative_to(root / new).as_posix()
                old_module = ".".join(
                    [*doctest_module(root, new).split(".")[:-1], old.split("/")[-1]]
                )
                new_module = doctest_module(root, f"{new}/{rel}")
                tail = new_module.removeprefix(doctest_module(root, new))
                out[f"{old}/{rel}::{old_module}{tail}"] = f"{new}/{rel}::{new_module}"
            for path in inner:  # test files in the package: their path only
                rel = path.relative_to(root / new).as_posix()
                out[f"{old}/{rel}"] = f"{new}/{rel}"
    return out
