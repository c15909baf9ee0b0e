"""Mutation benchmark: does Monte Carlo catch behaviour changes the library's tests catch?

For real, well-tested Python libraries (inflection from PyPI, and colorsys and textwrap from
the standard library with their CPython tests) this script

1. builds a base tree: the library module (renamed ``bench_<name>`` for stdlib modules, so
   the interpreter's own copy never shadows it) and the library's own tests;
2. runs the Monte Carlo phase's baseline once (``mc.baseline``: tests captured, inputs drawn,
   every public side-effect-free function and method of a public class sampled), exactly as
   ``pytest --orchestrate`` does with the slices Logic keeps;
3. generates semantic mutants inside function bodies (operator, comparison/boundary,
   constant, boolean and branch swaps), applies each to the tree and runs ``mc.candidate``
   under the 15 s cap: a mutant is *detected* when any function diverges;
4. runs the library's own tests against the same mutant (killed when they fail);
5. applies equivalent refactors to every sampled module-level function (rename through the
   plan, local variable renames, extraction of the body into a helper) and counts those
   Monte Carlo wrongly flags (must be 0).

Usage::

    .venv/bin/python benchmarks/mutants.py [--libs inflection,colorsys,textwrap]
        [--mutants 30] [--seed 1] [--cap 15]

Fetches inflection with ``pip download`` into ``benchmarks/.corpus/`` (git-ignored) if it is
not there. Prints one table per library and the totals; not run as a test.
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import random
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pluggy

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pytest_orchestrator.guard.children import child_env  # noqa: E402
from pytest_orchestrator.model import LogicResult, RankedSlice, Slice  # noqa: E402
from pytest_orchestrator.phases.montecarlo import phase as mc  # noqa: E402
from pytest_orchestrator.phases.montecarlo.differential import read_report  # noqa: E402
from pytest_orchestrator.phases.montecarlo.sideeffects import ModuleIndex, analyse  # noqa: E402
from pytest_orchestrator.phases.montecarlo.targets import module_name  # noqa: E402
from pytest_orchestrator.plan import Budgets, Plan, Step  # noqa: E402
from pytest_orchestrator.run import Run  # noqa: E402
from pytest_orchestrator.settings import Settings  # noqa: E402
from pytest_orchestrator.tracing import Tracer  # noqa: E402

CORPUS = ROOT / "benchmarks" / ".corpus"
STDLIB = Path(sysconfig.get_paths()["stdlib"])


@dataclass
class Library:
    name: str
    module_path: str
    """Path of the module inside the tree."""
    test_path: str
    source: str
    tests: str


def load_library(name: str) -> Library:
    if name == "inflection":
        archive = CORPUS / "inflection-0.5.1.tar.gz"
        if not archive.exists():
            CORPUS.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                 "-d", str(CORPUS), "inflection==0.5.1"],
                check=True,
            )  # fmt: skip
        with tarfile.open(archive) as tar:
            src = tar.extractfile("inflection-0.5.1/inflection/__init__.py")
            tests = tar.extractfile("inflection-0.5.1/test_inflection.py")
            assert src is not None
            assert tests is not None
            return Library(name, "inflection.py", "tests/test_inflection.py",
                           src.read().decode(), tests.read().decode())  # fmt: skip
    source = (STDLIB / f"{name}.py").read_text()
    tests = (STDLIB / "test" / f"test_{name}.py").read_text()
    tests = tests.replace(f"import {name}\n", f"import bench_{name} as {name}\n")
    tests = tests.replace(f"from {name} import", f"from bench_{name} import")
    return Library(name, f"bench_{name}.py", f"tests/test_{name}.py", source, tests)


# ---------------------------------------------------------------------------- mutants

_BINOPS: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div, ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult,
}  # fmt: skip
_CMPOPS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In,
}  # fmt: skip


@dataclass(frozen=True)
class Mutant:
    index: int
    line: int
    kind: str
    source: str


def _in_functions(tree: ast.Module) -> Iterator[ast.AST]:
    """Nodes inside function bodies (module-level code runs at import: left alone)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                body = body[1:]  # the docstring
            for stmt in body:
                yield from ast.walk(stmt)


def mutation_sites(tree: ast.Module) -> list[tuple[ast.AST, str]]:
    sites: list[tuple[ast.AST, str]] = []
    seen: set[int] = set()
    for node in _in_functions(tree):
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            sites.append((node, "operator"))
        elif isinstance(node, ast.Compare) and type(node.ops[0]) in _CMPOPS:
            kind = (
                "boundary"
                if isinstance(node.ops[0], ast.Lt | ast.LtE | ast.Gt | ast.GtE)
                else "comparison"
            )
            sites.append((node, kind))
        elif isinstance(node, ast.BoolOp):
            sites.append((node, "boolean"))
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, bool | int | float)
            and not isinstance(node.value, complex)
        ):
            sites.append((node, "constant"))
        elif isinstance(node, ast.If):
            sites.append((node, "branch"))
    return sites


def mutate(node: ast.AST) -> None:
    if isinstance(node, ast.BinOp):
        node.op = _BINOPS[type(node.op)]()
    elif isinstance(node, ast.Compare):
        node.ops[0] = _CMPOPS[type(node.ops[0])]()
    elif isinstance(node, ast.BoolOp):
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif isinstance(node, ast.Constant):
        value = node.value
        node.value = (not value) if isinstance(value, bool) else value + 1
    elif isinstance(node, ast.If):
        if node.orelse:
            node.body, node.orelse = node.orelse, node.body
        else:
            node.test = ast.UnaryOp(op=ast.Not(), operand=node.test)


def mutants(source: str, limit: int, seed: int) -> list[Mutant]:
    tree = ast.parse(source)
    sites = mutation_sites(tree)
    chosen = sorted(random.Random(seed).sample(range(len(sites)), min(limit, len(sites))))
    out = []
    for index in chosen:
        mutated = ast.parse(source)
        node, kind = mutation_sites(mutated)[index]
        mutate(node)
        ast.fix_missing_locations(mutated)
        out.append(Mutant(index, getattr(node, "lineno", 0), kind, ast.unparse(mutated)))
    return out


# ---------------------------------------------------------------------------- refactors


def rename_function(source: str, name: str, new: str) -> str:
    """Rename the module-level function and the names that refer to it (a method of the same
    name, called as an attribute, is a different symbol and keeps its name)."""
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            node.name = new
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == name:
            node.id = new
    return ast.unparse(tree)


def rename_locals(source: str, name: str) -> str | None:
    """Rename the function's plain local variables (not parameters, globals, closures)."""
    tree = ast.parse(source)
    func = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name), None)
    if func is None:
        return None
    params = {a.arg for a in ast.walk(func.args) if isinstance(a, ast.arg)}
    nested = any(isinstance(n, ast.FunctionDef | ast.Lambda | ast.ClassDef | ast.comprehension)
                 for stmt in func.body for n in ast.walk(stmt))  # fmt: skip
    declared = {
        n for s in ast.walk(func) if isinstance(s, ast.Global | ast.Nonlocal) for n in s.names
    }
    stored = {
        n.id for n in ast.walk(func) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    }
    local = stored - params - declared
    if not local or nested:
        return None
    for node in ast.walk(func):
        if isinstance(node, ast.Name) and node.id in local:
            node.id = f"{node.id}_renamed"
    return ast.unparse(tree)


def extract_body(source: str, name: str) -> str | None:
    """Move the body into ``_<name>_body(<params>)`` and call it: an 'extract function'."""
    tree = ast.parse(source)
    for i, func in enumerate(tree.body):
        if not (isinstance(func, ast.FunctionDef) and func.name == name):
            continue
        args = func.args
        if args.vararg or args.kwarg or args.posonlyargs:
            return None
        if any(isinstance(n, ast.Yield | ast.YieldFrom) for n in ast.walk(func)):
            return None
        helper = copy.deepcopy(func)
        helper.name = f"_{name}_body"
        helper.decorator_list = []
        names = [a.arg for a in args.args] + [a.arg for a in args.kwonlyargs]
        call = ast.Call(
            func=ast.Name(helper.name, ast.Load()),
            args=[ast.Name(a.arg, ast.Load()) for a in args.args],
            keywords=[ast.keyword(a.arg, ast.Name(a.arg, ast.Load())) for a in args.kwonlyargs],
        )
        doc = func.body[:1] if ast.get_docstring(func) is not None else []
        func.body = [*doc, ast.Return(call)]
        del names
        tree.body.insert(i + 1, helper)
        ast.fix_missing_locations(tree)
        return ast.unparse(tree)
    return None


# ---------------------------------------------------------------------------- running


@dataclass
class Outcome:
    label: str
    kind: str
    mc: bool
    tests: bool | None
    seconds: float
    detail: str = ""


@dataclass
class LibraryResult:
    name: str
    functions: list[str]
    skipped: list[str]
    base_seconds: float
    base_samples: int
    mutants: list[Outcome] = field(default_factory=list)
    refactors: list[Outcome] = field(default_factory=list)


def make_run(
    tmp: Path, tree: Path, lib: Library, functions: list[str], cap: float, seed: int
) -> Run:
    run_dir = tmp / "run"
    run_dir.mkdir(exist_ok=True)
    settings = Settings(command="refactor", run_root=tmp / "runs", cache_dir=tmp / "cache",
                        seed=seed, budgets=Budgets(montecarlo_seconds=cap))  # fmt: skip
    run = Run("bench", settings, tree, tree, "b", f"bench-{lib.name}", None, run_dir,
              pluggy.PluginManager("pytest").hook, Tracer(run_dir / "trace.json"), {})  # fmt: skip
    run.logic = LogicResult(
        slices=[RankedSlice(slice=Slice(path=lib.module_path, symbol=f,
                                        kind="method" if "." in f else "function",
                                        start_line=1, end_line=1, hash="0", tokens=1), score=1.0)
                for f in functions],
        budget_tokens=4000, used_tokens=1,
    )  # fmt: skip
    return run


def public_functions(tree: Path, lib: Library) -> tuple[list[str], list[str]]:
    module = module_name(lib.module_path)
    assert module is not None
    parsed = ast.parse(lib.source)
    index = ModuleIndex(tree)
    keep, skipped = [], []
    names = []
    for node in parsed.body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            names.append(node.name)
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            names += [f"{node.name}.{m.name}" for m in node.body
                      if isinstance(m, ast.FunctionDef) and not m.name.startswith("_")
                      and not m.decorator_list]  # fmt: skip
    for name in names:
        finding = analyse(index, module, name)
        (skipped if finding else keep).append(name)
    return keep, skipped


def run_tests(tree: Path, lib: Library) -> bool:
    """True when the library's own tests pass on ``tree``."""
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
           "-p", "no:randomly", lib.test_path]  # fmt: skip
    try:
        proc = subprocess.run(cmd, cwd=tree, env=child_env(tree), capture_output=True, timeout=120)
    except subprocess.TimeoutExpired:
        return False
    return proc.returncode == 0


def diverged(summary: object) -> list[str]:
    return [f"{d.simulation}" for d in summary.diverged]  # type: ignore[attr-defined]


def bench_library(name: str, limit: int, seed: int, cap: float, work: Path) -> LibraryResult:
    lib = load_library(name)
    tmp = work / name
    tree = tmp / "tree"
    (tree / "tests").mkdir(parents=True)
    (tree / lib.module_path).write_text(lib.source)
    (tree / lib.test_path).write_text(lib.tests)
    if not run_tests(tree, lib):
        raise SystemExit(f"{name}: the library's own tests fail on the base tree")
    functions, skipped = public_functions(tree, lib)
    run = make_run(tmp, tree, lib, functions, cap, seed)
    start = time.monotonic()
    base = mc.baseline(run)
    base_seconds = time.monotonic() - start
    report = read_report(run.run_dir / mc.DIFFERENTIAL_FILE)
    assert report is not None
    result = LibraryResult(name, functions, skipped + [f.target for f in report.functions if f.skipped],  # noqa: E501
                           base_seconds, report.samples)  # fmt: skip
    plan = Plan(command="refactor", steps=[Step(id="e", pool="mutate", op="apply_patch", args={})])
    target = tree / lib.module_path
    for m in mutants(lib.source, limit, seed):
        target.write_text(m.source)
        start = time.monotonic()
        summary = mc.candidate(run, base, plan)
        seconds = time.monotonic() - start
        killed = not run_tests(tree, lib)
        result.mutants.append(Outcome(f"line {m.line}", m.kind, bool(summary.diverged), killed,
                                      seconds, ", ".join(diverged(summary))))  # fmt: skip
        print(f"  {name} mutant {m.kind:<10} line {m.line:<4} mc={bool(summary.diverged)!s:<5}"
              f" tests={killed!s:<5} {seconds:5.1f}s", flush=True)  # fmt: skip
    sampled = [f.qualname for f in report.functions
               if f.samples and not f.skipped and "." not in f.qualname]  # fmt: skip
    for fn in sampled:
        for kind, source, steps in refactors(lib.source, fn):
            target.write_text(source)
            start = time.monotonic()
            summary = mc.candidate(run, base, Plan(command="refactor", steps=steps))
            seconds = time.monotonic() - start
            flagged = bool(summary.diverged)
            result.refactors.append(Outcome(fn, kind, flagged, None, seconds,
                                            ", ".join(diverged(summary))))  # fmt: skip
            print(f"  {name} refactor {kind:<14} {fn:<22} flagged={flagged} {seconds:4.1f}s",
                  flush=True)  # fmt: skip
    target.write_text(lib.source)
    return result


def refactors(source: str, fn: str) -> Iterator[tuple[str, str, list[Step]]]:
    new = f"{fn}_renamed"
    step = Step(id="r", pool="mutate", op="rename_symbol", args={"symbol": fn, "new_name": new})
    yield "rename", rename_function(source, fn, new), [step]
    plain = [Step(id="e", pool="mutate", op="apply_patch", args={})]
    local = rename_locals(source, fn)
    if local is not None:
        yield "rename locals", local, plain
    extracted = extract_body(source, fn)
    if extracted is not None:
        yield "extract", extracted, plain


def share(n: int, d: int) -> str:
    return f"{n}/{d} ({100 * n / d:.0f} %)" if d else "0/0"


def report(results: list[LibraryResult], cap: float) -> None:
    print()
    header = f"{'library':<12} {'funcs':>5} {'mutants':>7} {'MC detects':>16} {'tests detect':>16} {'MC only':>8} {'tests only':>10} {'refactors flagged':>18}"  # noqa: E501
    print(header)
    print("-" * len(header))
    all_m: list[Outcome] = []
    all_r: list[Outcome] = []
    for r in results:
        ms, rs = r.mutants, r.refactors
        all_m += ms
        all_r += rs
        print(
            f"{r.name:<12} {len(r.functions):>5} {len(ms):>7} {share(sum(m.mc for m in ms), len(ms)):>16}"  # noqa: E501
            f" {share(sum(bool(m.tests) for m in ms), len(ms)):>16} {sum(m.mc and not m.tests for m in ms):>8}"  # noqa: E501
            f" {sum(bool(m.tests) and not m.mc for m in ms):>10} {share(sum(x.mc for x in rs), len(rs)):>18}"  # noqa: E501
        )
    print("-" * len(header))
    print(f"{'total':<12} {sum(len(r.functions) for r in results):>5} {len(all_m):>7} "
          f"{share(sum(m.mc for m in all_m), len(all_m)):>16} "
          f"{share(sum(bool(m.tests) for m in all_m), len(all_m)):>16} "
          f"{sum(m.mc and not m.tests for m in all_m):>8} "
          f"{sum(bool(m.tests) and not m.mc for m in all_m):>10} "
          f"{share(sum(x.mc for x in all_r), len(all_r)):>18}")  # fmt: skip
    kinds = sorted({m.kind for m in all_m})
    print()
    print("by mutation kind:  " + "  ".join(
        f"{k} {share(sum(m.mc for m in all_m if m.kind == k), sum(m.kind == k for m in all_m))}"
        for k in kinds))  # fmt: skip
    walls = sorted(m.seconds for m in all_m + all_r)
    if walls:
        p95 = walls[min(len(walls) - 1, int(0.95 * len(walls)))]
        print(f"candidate phase wall time (s), n={len(walls)}: min {walls[0]:.2f}  median "
              f"{statistics.median(walls):.2f}  p95 {p95:.2f}  max {walls[-1]:.2f}  (cap {cap:g})")  # fmt: skip  # noqa: E501
    for r in results:
        print(f"{r.name}: base phase {r.base_seconds:.1f}s, {r.base_samples} samples over "
              f"{len(r.functions)} public function(s); not sampled: {', '.join(r.skipped) or '-'}")  # fmt: skip  # noqa: E501
    flagged = [x for x in all_r if x.mc]
    for x in flagged:
        print(f"FALSE POSITIVE: {x.kind} of {x.label}: {x.detail}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--libs", default="inflection,colorsys,textwrap")
    parser.add_argument("--mutants", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cap", type=float, default=15.0)
    parser.add_argument("--json", type=Path, help="also write the raw outcomes here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mc-mutants-") as tmp:
        results = [
            bench_library(name, args.mutants, args.seed, args.cap, Path(tmp))
            for name in args.libs.split(",")
        ]
        report(results, args.cap)
    if args.json:
        args.json.write_text(
            json.dumps([r.__dict__ for r in results], default=lambda o: o.__dict__, indent=1)
        )
    shutil.rmtree(CORPUS / "inflection-0.5.1", ignore_errors=True)


if __name__ == "__main__":
    main()
