"""Each refactoring op's own promise, checked on the tree after the change.

The tests passing says behaviour held; it does not say the op did what the PR says. A move
that left an import of the old location inside a test function passes as long as the old
module happens to hold the name. So after each op, the tree is read again:

- ``rename_symbol``: the new name is defined, the old one is not;
- ``move_symbol``: the name is defined in the destination, not in the source (a re-export
  only imports it there), and nothing imports it from the old module any more;
- ``rename_module``: the old file or folder is gone, the new one exists, and no import names
  the old module;
- ``change_signature``: the parameter is there (add), gone (remove), or renamed with no call
  of the function still passing the old keyword (rename, remove);
- ``inline``: the name is defined nowhere and read nowhere (a local variable: in its function);
- ``extract``: the new function is defined and called.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from pytest_orchestrator.model import Check
from pytest_orchestrator.phases.execute import imports, refactor
from pytest_orchestrator.plan import Step


def check(root: Path, step: Step) -> Check | None:
    """The promise check of one step, or None for an op that makes no such promise."""
    verify = _CHECKS.get(step.op)
    if verify is None:
        return None
    try:
        problems, done = verify(root, step.args)
    except (OSError, SyntaxError, ValueError) as exc:
        problems, done = [f"could not be read back: {exc}"], ""
    name = "rename" if step.op == "rename_symbol" else f"{step.op} promise"
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        return Check(name=name, ok=False, detail="; ".join(problems[:5]) + more)
    return Check(name=name, ok=True, detail=done)


Result = tuple[list[str], str]


def _rename_symbol(root: Path, args: dict[str, Any]) -> Result:
    symbol, new_name = str(args["symbol"]), str(args["new_name"])
    *outer, _old = symbol.split(".")
    new_symbol = ".".join([*outer, new_name])
    problems = []
    if refactor.find_definitions(root, symbol):
        problems.append(f"{symbol} is still defined")
    if not refactor.find_definitions(root, new_symbol):
        problems.append(f"{new_symbol} is not defined")
    return problems, f"{symbol} -> {new_symbol}"


def _py_files(root: Path, name: str) -> tuple[list[str], dict[str, str]]:
    files = [f for f in refactor.files_mentioning(root, name) if f.endswith(".py")]
    return files, {f: refactor.module_of(root, f) for f in files}


def _stale(found: list[imports.Stale]) -> list[str]:
    return [f"{s.path}:{s.line} still imports the old location ({s.text})" for s in found]


def _move_symbol(root: Path, args: dict[str, Any]) -> Result:
    name = str(args["symbol"]).split(".")[-1]
    to, source = str(args["to"]), args.get("path")
    problems = []
    if not refactor.find_definitions(root, name, to):
        problems.append(f"{name} is not defined in {to}")
    if source and refactor.find_definitions(root, name, str(source)):
        problems.append(f"{name} is still defined in {source}")
    if source and not args.get("reexport"):
        files, modules = _py_files(root, name)
        old = refactor.module_of(root, str(source))
        problems += _stale(imports.stale(root, files, modules, old, name))
    return problems, f"{name} defined in {to}; no import of it from the old module left"


def _rename_module(root: Path, args: dict[str, Any]) -> Result:
    path = str(args["path"])
    new_name = str(args["new_name"])
    pure = PurePosixPath(path)
    new_path = pure.with_name(new_name + (".py" if path.endswith(".py") else ""))
    problems = []
    if (root / path).exists():
        problems.append(f"{path} still exists")
    if not (root / new_path).exists():
        problems.append(f"{new_path} does not exist")
    old = refactor.module_of(root, path)
    leaf = pure.name.removesuffix(".py")
    files, modules = _py_files(root, leaf)
    for rel in files:
        importer = modules[rel] + (".__init__" if rel.endswith("__init__.py") else "")
        tree = ast.parse((root / rel).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            named = []
            if isinstance(node, ast.Import):
                named = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                parent = imports.absolute(importer, node)
                named = [parent] + [f"{parent}.{a.name}" for a in node.names]
            stale = any(n == old or n.startswith(old + ".") for n in named)
            if stale and isinstance(node, ast.stmt):
                problems.append(f"{rel}:{node.lineno} still imports {old}")
    return problems, f"{path} -> {new_path}; no import of {old} left"


def _function(
    root: Path, args: dict[str, Any]
) -> tuple[ast.FunctionDef | ast.AsyncFunctionDef, str]:
    symbol = str(args["symbol"])
    path = args.get("path")
    found = refactor.find_definitions(root, symbol, str(path) if path else None)
    if len(found) != 1:
        raise ValueError(f"{symbol} is defined {len(found)} times")
    text = (root / found[0].path).read_text(encoding="utf-8")
    for node in ast.walk(ast.parse(text)):
        if (
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.lineno == found[0].line
        ):
            return node, found[0].path
    raise ValueError(f"{symbol} is not a function")


def _keyword_calls(root: Path, function: str, keyword: str) -> Iterator[str]:
    """Calls of ``function`` (by name or attribute) still passing ``keyword=``."""
    files, _ = _py_files(root, function)
    for rel in files:
        tree = ast.parse((root / rel).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            callee = node.func
            called = callee.id if isinstance(callee, ast.Name) else getattr(callee, "attr", "")
            if called == function and any(k.arg == keyword for k in node.keywords):
                yield f"{rel}:{node.lineno} still passes {keyword}= to {function}"


def _change_signature(root: Path, args: dict[str, Any]) -> Result:
    node, path = _function(root, args)
    a = node.args
    params = [x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs]]
    param, action = str(args["param"]), str(args["action"])
    name = str(args["symbol"]).split(".")[-1]
    problems: list[str] = []
    if action == "add":
        if param not in params:
            problems.append(f"{name} has no parameter {param}")
        return problems, f"{name}({', '.join(params)}) in {path}"
    if param in params:
        problems.append(f"{name} still has the parameter {param}")
    if action == "rename" and str(args.get("new_name")) not in params:
        problems.append(f"{name} has no parameter {args.get('new_name')}")
    problems += list(_keyword_calls(root, name, param))
    return problems, f"{name}({', '.join(params)}) in {path}; no call passes {param}="


def _inline(root: Path, args: dict[str, Any]) -> Result:
    symbol = str(args["symbol"])
    name = symbol.split(".")[-1]
    within = args.get("within")
    if within:
        node, path = _function(root, {"symbol": within, "path": args.get("path")})
        left = [
            f"{path}:{n.lineno} still uses {name}"
            for n in ast.walk(node)
            if isinstance(n, ast.Name) and n.id == name
        ]
        return left, f"{name} no longer appears in {within}"
    path = str(args.get("path") or "")
    problems = [
        f"{d.path}:{d.line} still defines {name}"
        for d in refactor.find_definitions(root, symbol, path or None)
    ]
    if path and (root / path).is_file():
        for n in ast.walk(ast.parse((root / path).read_text(encoding="utf-8"))):
            if isinstance(n, ast.Name) and n.id == name:
                problems.append(f"{path}:{n.lineno} still uses {name}")
        files, modules = _py_files(root, name)
        found = imports.stale(root, files, modules, refactor.module_of(root, path), name)
        problems += [f"{s.path}:{s.line} still imports {name} ({s.text})" for s in found]
    return problems, f"{name} is defined and used nowhere"


def _extract(root: Path, args: dict[str, Any]) -> Result:
    path, new_name = str(args["path"]), str(args["new_name"])
    tree = ast.parse((root / path).read_text(encoding="utf-8"))
    defined = any(
        isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == new_name
        for n in ast.walk(tree)
    )
    called = any(
        isinstance(n, ast.Call)
        and (n.func.id if isinstance(n.func, ast.Name) else getattr(n.func, "attr", "")) == new_name
        for n in ast.walk(tree)
    )
    problems = [] if defined else [f"{new_name} is not defined in {path}"]
    problems += [] if called else [f"{new_name} is never called in {path}"]
    return problems, f"{new_name} defined and called in {path}"


_CHECKS: dict[str, Callable[[Path, dict[str, Any]], Result]] = {
    "rename_symbol": _rename_symbol,
    "move_symbol": _move_symbol,
    "rename_module": _rename_module,
    "change_signature": _change_signature,
    "inline": _inline,
    "extract": _extract,
}
