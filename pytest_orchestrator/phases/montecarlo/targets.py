"""What differential sampling samples: functions of the tree, and where they went.

`targets_from_run` takes the functions and methods Logic kept (a method is called on an
instance drawn like any other input, see `pytest_orchestrator.phases.montecarlo.inputs`) and
adds the public functions calling them, from Logic's call graph and a bounded scan of the tree
(`public_callers`). On the candidate side, `renames_from` reads the plan's ``rename_symbol``
steps and `definers` finds the modules that now define a name, so a renamed or moved function
is still found and compared.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from pytest_orchestrator.repo.files import is_test_path
from pytest_orchestrator.repo.layout import source_roots

if TYPE_CHECKING:
    from pytest_orchestrator.plan import Plan
    from pytest_orchestrator.run import Run

MAX_TARGETS: Final = 40


@dataclass(frozen=True)
class Target:
    module: str
    qualname: str

    @property
    def id(self) -> str:
        return f"{self.module}.{self.qualname}"

    @property
    def file_id(self) -> str:
        return re.sub(r"[^A-Za-z0-9_.-]", "_", self.id)


# ---------------------------------------------------------------------------- parent


def module_name(path: str) -> str | None:
    """``src/pkg/mod.py`` -> ``pkg.mod``; None for tests, scripts and non-Python files."""
    parts = list(Path(path).with_suffix("").parts)
    if not path.endswith(".py") or not parts:
        return None
    if parts[0] == "src":
        parts = parts[1:]
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    if not parts or is_test_path(path):
        return None
    if not all(p.isidentifier() for p in parts):
        return None
    return ".".join(parts)


def targets_from_run(run: Run) -> tuple[list[Target], dict[str, str]]:
    """Logic's kept functions and methods and the public functions calling them, and what is
    not sampled (target id -> why)."""
    targets: list[Target] = []
    skipped: dict[str, str] = {}
    if run.logic is None:
        return targets, skipped
    by_symbol: dict[str, Target] = {}
    for ranked in run.logic.kept:
        s = ranked.slice
        module = module_name(s.path)
        if module is None or s.kind not in ("function", "method") or not _dotted(s.symbol):
            continue
        target = Target(module, s.symbol)
        if s.kind == "method" and s.symbol.rpartition(".")[2].startswith("__"):
            skipped[target.id] = "special method: sampled through its class, not alone"
            continue
        targets.append(target)
        by_symbol[s.symbol] = target
    for caller, callee in run.logic.edges:
        if _leaf(callee) in {_leaf(k) for k in by_symbol}:
            resolved = _resolve_caller(run, caller)
            if resolved is not None and not _leaf(resolved.qualname).startswith("_"):
                targets.append(resolved)
    targets += public_callers(run.worktree, {_leaf(k) for k in by_symbol})
    unique = [t for t in dict.fromkeys(targets) if _dotted(t.qualname)]
    return unique[:MAX_TARGETS], skipped


def _dotted(symbol: str) -> bool:
    return bool(symbol) and all(part.isidentifier() for part in symbol.split("."))


def public_callers(tree: Path, names: set[str], max_files: int = 300) -> list[Target]:
    """Public top-level functions of the tree's modules that call one of ``names``.

    Logic's call graph covers its candidates only; a public entry point one call above a
    kept function is where a user sees a behaviour change, so it is sampled too.
    """
    if not names:
        return []
    found: list[Target] = []
    pattern = re.compile(r"\b(" + "|".join(re.escape(n) for n in sorted(names)) + r")\s*\(")
    files = [p for p in sorted(tree.rglob("*.py")) if ".orchestrate" not in p.parts][:max_files]
    for path in files:
        module = module_name(path.relative_to(tree).as_posix())
        if module is None:
            continue
        try:
            text = path.read_text(encoding="utf-8")
            # a substring test first: the regex's ``\b`` is tried at every position, ~1 ms
            # per large module, and almost no module mentions the names at all
            if not any(n in text for n in names) or not pattern.search(text):
                continue
            parsed = ast.parse(text)
        except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in parsed.body:
            if not isinstance(node, ast.FunctionDef) or node.name.startswith("_"):
                continue
            if node.name in names:
                continue
            called = {
                n.func.id if isinstance(n.func, ast.Name) else n.func.attr
                for n in ast.walk(node)
                if isinstance(n, ast.Call) and isinstance(n.func, ast.Name | ast.Attribute)
            }
            if called & names:
                found.append(Target(module, node.name))
    return found


def _leaf(name: str) -> str:
    return name.split("::")[-1].split(":")[-1].rpartition(".")[2]


def _resolve_caller(run: Run, caller: str) -> Target | None:
    if "::" in caller:
        path, symbol = caller.split("::", 1)
        module = module_name(path)
        return Target(module, symbol) if module and "." not in symbol else None
    if run.map is None:
        return None
    for ranked in run.map.slices:
        s = ranked.slice
        if s.kind == "function" and (s.symbol == caller or f"{s.path}:{s.symbol}" == caller):
            module = module_name(s.path)
            return Target(module, s.symbol) if module else None
    return None


def renamed(qualname: str, renames: dict[str, str]) -> str:
    """``qualname`` after the plan's renames: a rename of ``Class`` moves ``Class.method``
    along; a rename of the function ``wrap`` leaves the method ``Wrapper.wrap`` alone."""
    parts = qualname.split(".")
    for k in range(1, len(parts) + 1):
        new = renames.get(".".join(qualname.split(".")[:k]))
        if new is not None:
            parts[k - 1] = new
    return ".".join(parts)


def top_level(renames: dict[str, str]) -> dict[str, str]:
    """The renames of module-level names: what pickles and encoded type names refer to."""
    return {old: new for old, new in renames.items() if "." not in old}


def renames_from(plan: Plan | None) -> dict[str, str]:
    """``symbol`` -> new last segment for every ``rename_symbol`` step (``symbol`` may be
    ``Class.method``)."""
    out: dict[str, str] = {}
    for step in plan.steps if plan is not None else []:
        if step.op == "rename_symbol":
            old = str(step.args.get("symbol", ""))
            new = str(step.args.get("new_name", "")).rpartition(".")[2]
            if old and new:
                out[old] = new
    return out


def qualified_renames_from(tree: Path, plan: Plan | None) -> dict[str, str]:
    """Old dotted name -> new, for what a module rename or a move changes in the names
    values carry (``__module__``, qualnames, reprs, type names): ``cachetools.func`` ->
    ``cachetools.functions``; ``pkg.core.simple`` -> ``pkg.formats.simple``. Such a
    difference is the planned effect, not a behaviour change."""
    out: dict[str, str] = {}
    for step in plan.steps if plan is not None else []:
        args = step.args
        if step.op == "rename_module" and args.get("path") and args.get("new_name"):
            old = dotted(tree, str(args["path"]))
            out[old] = ".".join([*old.split(".")[:-1], str(args["new_name"])])
        elif step.op == "move_symbol" and args.get("path") and args.get("to"):
            name = str(args.get("symbol", "")).rpartition(".")[2]
            old, new = dotted(tree, str(args["path"])), dotted(tree, str(args["to"]))
            out[f"{old}.{name}"] = f"{new}.{name}"
    return out


def dotted(tree: Path, rel: str) -> str:
    """The dotted module a file or package folder of ``tree`` is imported as."""
    for base in sorted(source_roots(tree), key=len, reverse=True):
        if rel.startswith(base + "/"):
            rel = rel[len(base) + 1 :]
            break
    parts = rel.removesuffix(".py").split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def requalify(text: str, renames: dict[str, str]) -> str:
    """``text`` with each old dotted name (`qualified_renames_from`) written as its new one,
    only as a whole dotted name: ``cachetools.func`` in ``cachetools.func._cache`` or
    ``<class 'cachetools.func.X'>``, never in ``cachetools.functools`` or ``my_cachetools.func``."""
    for old, new in renames.items():
        if old in text:
            text = re.sub(rf"(?<![\w.]){re.escape(old)}(?!\w)", new, text)
    return text


def inlined_from(tree: Path, plan: Plan | None) -> set[str]:
    """The functions and constants the plan inlines, as ``module.name`` (gone by design:
    their callers, which now hold their bodies, are what is compared)."""
    out = set()
    for step in plan.steps if plan is not None else []:
        if step.op == "inline" and not step.args.get("within") and step.args.get("path"):
            name = str(step.args.get("symbol", "")).rpartition(".")[2]
            out.add(f"{dotted(tree, str(step.args['path']))}.{name}")
    return out


def keyword_renames_from(plan: Plan | None) -> dict[str, dict[str, str]]:
    """``symbol`` -> {old parameter: new} for every ``change_signature`` rename: the
    candidate is called with the base's keyword arguments under their new names (a
    parameter rename keeps behaviour; the call spelling is what changed)."""
    out: dict[str, dict[str, str]] = {}
    for step in plan.steps if plan is not None else []:
        if step.op == "change_signature" and step.args.get("action") == "rename":
            symbol = str(step.args.get("symbol", ""))
            old, new = str(step.args.get("param", "")), str(step.args.get("new_name", ""))
            if symbol and old and new:
                out.setdefault(symbol, {})[old] = new
    return out


def removed_params_from(plan: Plan | None) -> dict[str, list[str]]:
    """``symbol`` -> the parameters every ``change_signature`` remove takes away: the
    candidate is called with the base's arguments less those (the body never read them, so
    the base's behaviour cannot depend on them; only the call spelling changed)."""
    out: dict[str, list[str]] = {}
    for step in plan.steps if plan is not None else []:
        if step.op == "change_signature" and step.args.get("action") == "remove":
            symbol, param = str(step.args.get("symbol", "")), str(step.args.get("param", ""))
            if symbol and param:
                out.setdefault(symbol, []).append(param)
    return out


def definers(tree: Path, names: set[str]) -> dict[str, list[str]]:
    """Modules of ``tree`` that define each name at top level (to follow moves)."""
    found: dict[str, list[str]] = {n: [] for n in names}
    if not names:
        return found
    pattern = re.compile(
        rb"^(?:async\s+def|def|class)\s+("
        + b"|".join(re.escape(n.encode()) for n in names)
        + rb")\b",
        re.M,
    )
    for path in sorted(tree.rglob("*.py")):
        rel = path.relative_to(tree).as_posix()
        if any(part.startswith(".") for part in Path(rel).parts):
            continue
        module = module_name(rel)
        if module is None:
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        for m in pattern.finditer(data):
            found[m.group(1).decode()].append(module)
    return found
