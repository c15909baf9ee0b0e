"""The target's root conftest is loaded one way for the controller and both children."""

from __future__ import annotations

from pathlib import Path

from pytest_orchestrator.hookspecs import CHILD_HOOKS, child_hooks, target_hooks

CONFTEST = """\
import pytest

@pytest.fixture
def thing():
    return 1

def pytest_configure(config):
    raise AssertionError("never called by a run")

def pytest_orchestrator_review(run, attempt):
    return []

@pytest.hookimpl(optionalhook=True)
def pytest_orchestrator_strategies():
    return {int: lambda rng: 7}
"""


def test_the_controller_and_the_children_get_disjoint_hooks(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    controller = target_hooks(tmp_path, in_child=False)
    child = target_hooks(tmp_path, in_child=True)
    assert controller is not None
    assert child is not None
    assert sorted(vars(controller)) == ["pytest_orchestrator_review"]
    assert sorted(vars(child)) == ["pytest_orchestrator_strategies"]
    assert set(vars(child)) <= CHILD_HOOKS


def test_a_child_calls_the_conftests_hooks_through_pluggy(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    pm, errors = child_hooks(tmp_path)
    assert errors == []
    (found,) = pm.hook.pytest_orchestrator_strategies()
    assert found[int](None) == 7


def test_a_conftest_that_names_no_hook_of_ours_is_never_imported(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text("raise SystemExit('imported')\n")
    assert target_hooks(tmp_path, in_child=False) is None
    assert child_hooks(tmp_path)[1] == []


def test_import_errors_and_bad_signatures_are_reported_not_raised_in_a_child(
    tmp_path: Path,
) -> None:
    broken, bad = tmp_path / "broken", tmp_path / "bad"
    broken.mkdir(), bad.mkdir()
    (broken / "conftest.py").write_text("import no_such_module\ndef pytest_orchestrator_x(): 0\n")
    (bad / "conftest.py").write_text("def pytest_orchestrator_montecarlo(nope): return []\n")
    assert "failed to import" in child_hooks(broken)[1][0]
    assert "nope" in child_hooks(bad)[1][0]
