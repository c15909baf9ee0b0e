"""A module rename changes the names values carry (``__module__``, qualnames, reprs): the
comparison expects that, and only that (cachetools: ``Rename module cachetools.func to
functions`` diverged on every decorator factory)."""

from __future__ import annotations

from pathlib import Path

import pluggy
import pytest

from pytest_orchestrator.model import LogicResult, RankedSlice, Slice
from pytest_orchestrator.phases.montecarlo import phase as mc
from pytest_orchestrator.phases.montecarlo.differential import FunctionReport, read_report
from pytest_orchestrator.phases.montecarlo.outcomes import agree, encode
from pytest_orchestrator.phases.montecarlo.targets import qualified_renames_from, requalify
from pytest_orchestrator.plan import Budgets, Plan, Step
from pytest_orchestrator.run import Run
from pytest_orchestrator.settings import Settings
from pytest_orchestrator.tracing import Tracer

FUNC = '''\
class Box:
    def __init__(self, n: int) -> None:
        self.n = n

    def __repr__(self) -> str:
        return f"<{type(self).__module__}.Box {self.n}>"


def factory(n: int):
    def decorator(f):
        return f

    return decorator


def boxed(n: int) -> Box:
    return Box(n)


def where(n: int) -> str:
    return f"{__name__}:{n}"


def label(n: int) -> str:
    return "cache.func" if n >= 0 else "other"
'''

RENAME = Step(id="rename", pool="mutate", op="rename_module",
              args={"path": "src/cache/func.py", "new_name": "functions"})  # fmt: skip


def make_run(
    tmp_path: Path, tree: Path, functions: tuple[str, ...] = ("factory", "boxed", "where", "label")
) -> Run:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    settings = Settings(command="rename module cache.func to functions",
                        run_root=tmp_path / "runs", cache_dir=tmp_path / "cache", seed=7,
                        budgets=Budgets(montecarlo_seconds=15.0))  # fmt: skip
    run = Run("modrename", settings, tree, tree, "b", "c0ffee", None, run_dir,
              pluggy.PluginManager("pytest").hook, Tracer(run_dir / "trace.json"), {})  # fmt: skip
    run.logic = LogicResult(
        slices=[RankedSlice(slice=Slice(path="src/cache/func.py", symbol=name, kind="function",
                                        start_line=1, end_line=2, hash="0", tokens=1), score=1.0)
                for name in functions],
        budget_tokens=4000, used_tokens=1,
    )  # fmt: skip
    return run


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, FunctionReport]:
    """Base on ``cache.func``; candidate on ``cache.functions``, where ``label`` also
    changed what it returns for negative numbers (an unrelated behaviour change)."""
    tmp = tmp_path_factory.mktemp("modrename")
    tree = tmp / "tree"
    (tree / "src" / "cache").mkdir(parents=True)
    (tree / "pyproject.toml").write_text('[tool.pytest.ini_options]\npythonpath = ["src"]\n')
    (tree / "src" / "cache" / "__init__.py").write_text("")
    (tree / "src" / "cache" / "func.py").write_text(FUNC)
    run = make_run(tmp, tree)
    base = mc.baseline(run)
    (tree / "src" / "cache" / "func.py").unlink()
    (tree / "src" / "cache" / "functions.py").write_text(
        FUNC.replace('"cache.func" if n >= 0 else "other"', '"cache.func" if n >= 0 else "oth"')
    )
    mc.candidate(run, base, Plan(command="rename module", steps=[RENAME]))
    report = read_report(run.run_dir / mc.DIFFERENTIAL_FILE)
    assert report is not None
    return {f.target.rpartition(".")[2]: f for f in report.functions}


@pytest.mark.parametrize("name", ["factory", "boxed", "where"])
def test_names_that_carry_the_renamed_module_agree(
    reports: dict[str, FunctionReport], name: str
) -> None:
    f = reports[name]
    assert f.candidate_name == f"cache.functions.{name}"
    assert f.compared > 50
    assert f.divergent == 0, f.counterexample


def test_an_unrelated_difference_still_diverges(reports: dict[str, FunctionReport]) -> None:
    f = reports["label"]
    assert f.divergent > 0
    assert f.counterexample is not None
    assert "oth" in f.counterexample.candidate


def test_the_renames_a_plan_declares(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "pyproject.toml").write_text('[tool.pytest.ini_options]\npythonpath = ["src"]\n')
    move = Step(id="move", pool="mutate", op="move_symbol", args={
        "symbol": "simple", "path": "src/pkg/core.py", "to": "src/pkg/fmt.py"})  # fmt: skip
    plan = Plan(command="x", steps=[RENAME, move])
    assert qualified_renames_from(tmp_path, plan) == {
        "cache.func": "cache.functions",
        "pkg.core.simple": "pkg.fmt.simple",
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cache.func._cache.<locals>.decorator", "cache.functions._cache.<locals>.decorator"),
        ("<class 'cache.func.Box'>", "<class 'cache.functions.Box'>"),
        ("cache.func", "cache.functions"),
        ("cache.functools.x", "cache.functools.x"),
        ("my_cache.func.x", "my_cache.func.x"),
        ("pkg.cache.func", "pkg.cache.func"),
    ],
)
def test_requalify_replaces_whole_dotted_names_only(text: str, expected: str) -> None:
    assert requalify(text, {"cache.func": "cache.functions"}) == expected


def test_agree_maps_base_strings_only_through_the_rename() -> None:
    def text(s: str) -> str:
        return requalify(s, {"cache.func": "cache.functions"})

    assert agree(encode("cache.func:1"), encode("cache.functions:1"), text=text) is None
    assert agree(encode("cache.func:1"), encode("cache.functions:2"), text=text) is not None
    assert agree(encode("cache.func:1"), encode("cache.functions:1")) is not None
