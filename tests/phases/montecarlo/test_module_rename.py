"""A module rename changes the names values carry (``__module__``, qualnames, reprs): the
comparison expects that, and only that (cachetools: ``Rename module cachetools.func to
functions`` diverged on every decorator factory)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_orchestrator.phases.montecarlo.differential import FunctionReport
from pytest_orchestrator.phases.montecarlo.outcomes import agree, encode
from pytest_orchestrator.phases.montecarlo.targets import qualified_renames_from, requalify
from pytest_orchestrator.plan import Plan, Step
from tests.phases.montecarlo.differential_helpers import compare

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


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, FunctionReport]:
    """Base on ``cache.func``; candidate on ``cache.functions``, where ``label`` also
    changed what it returns for negative numbers (an unrelated behaviour change)."""

    def rename(package: Path) -> None:
        (package / "func.py").unlink()
        (package / "functions.py").write_text(
            FUNC.replace('"cache.func" if n >= 0 else "other"', '"cache.func" if n >= 0 else "oth"')
        )

    return compare(
        tmp_path_factory.mktemp("modrename"), FUNC, rename,
        Plan(command="rename module", steps=[RENAME]), ("factory", "boxed", "where", "label"),
    )  # fmt: skip


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
