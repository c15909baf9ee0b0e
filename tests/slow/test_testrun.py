"""The inner test run: fresh, scrubbed, structural, and never fooled by the user's checkout."""

from __future__ import annotations

import os
from pathlib import Path

import psutil
import pytest

from pytest_orchestrator.errors import TestRunError
from pytest_orchestrator.phases.execute.testrun import run_tests


def tree(root: Path, value: int = 1, tests: str | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "calc.py").write_text(f"def value():\n    return {value}\n")
    (root / "tests").mkdir(exist_ok=True)
    (root / "tests" / "test_calc.py").write_text(
        tests or "from calc import value\n\ndef test_value():\n    assert value() == 1\n"
    )
    return root


def test_results_are_read_back_structurally(tmp_path: Path) -> None:
    """Pass, fail, skip, xfail, setup errors and collection errors each arrive as such."""
    wt = tree(
        tmp_path / "wt",
        tests=(
            "import pytest\n"
            "def test_pass(): pass\n"
            "def test_fail(): assert 1 == 2, 'one is not two'\n"
            "@pytest.mark.skip(reason='later')\n"
            "def test_skip(): pass\n"
            "@pytest.mark.xfail\n"
            "def test_xfail(): assert False\n"
            "@pytest.fixture\n"
            "def broken(): raise RuntimeError('fixture broke')\n"
            "def test_error(broken): pass\n"
        ),
    )
    (wt / "tests" / "test_syntax.py").write_text("def oops(:\n")
    result = run_tests(wt, user_repo=tmp_path / "user", scratch=tmp_path / "s", label="a")
    outcomes = {t.nodeid.split("::")[-1]: t.outcome for t in result.tests}
    assert outcomes == {
        "test_pass": "passed",
        "test_fail": "failed",
        "test_skip": "skipped",
        "test_xfail": "xfailed",
        "test_error": "error",
    }
    failed = {t.nodeid: t.message for t in result.failed}
    assert "one is not two" in failed["tests/test_calc.py::test_fail"]
    assert [e.nodeid for e in result.collection_errors] == ["tests/test_syntax.py"]
    assert not result.green


def test_same_second_same_size_edits_are_never_stale(tmp_path: Path) -> None:
    """Each run has its own pycache prefix: an edit keeping size and mtime is still seen."""
    wt = tree(tmp_path / "wt", value=1)
    first = run_tests(wt, user_repo=tmp_path / "user", scratch=tmp_path / "s", label="one")
    assert first.green
    calc = wt / "calc.py"
    stat = calc.stat()
    calc.write_text("def value():\n    return 2\n")  # same size
    os.utime(calc, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same mtime
    second = run_tests(wt, user_repo=tmp_path / "user", scratch=tmp_path / "s", label="two")
    assert [t.outcome for t in second.tests] == ["failed"]


def test_an_inherited_pythonpath_cannot_point_the_run_at_the_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PYTHONPATH to the user's checkout is scrubbed: the worktree's code is what runs."""
    user = tree(tmp_path / "user", value=99)
    wt = tree(tmp_path / "wt", value=1)
    monkeypatch.setenv("PYTHONPATH", str(user))
    monkeypatch.setenv("PYTEST_ADDOPTS", "-x --bogus-option")
    assert run_tests(wt, user_repo=user, scratch=tmp_path / "s", label="a").green


@pytest.mark.parametrize("workers", [0, 2])
def test_code_imported_from_the_checkout_is_detected(tmp_path: Path, workers: int) -> None:
    """If the tests import the user's checkout anyway (say an editable install), the run
    is refused as untrustworthy, with or without xdist."""
    user = tree(tmp_path / "user", value=1)
    wt = tree(
        tmp_path / "wt",
        tests=(
            f"import sys\nsys.path.insert(0, {str(user)!r})\n"
            "import importlib, calc\nimportlib.reload(calc)\n"
            "def test_value():\n    assert calc.value() == 1\n"
        ),
    )
    (wt / "calc.py").unlink()
    with pytest.raises(TestRunError, match="imported code from your checkout") as info:
        run_tests(wt, user_repo=user, scratch=tmp_path / "s", label="a", workers=workers)
    assert str(user / "calc.py") in str(info.value)


def test_a_hanging_suite_is_stopped_with_all_its_processes(tmp_path: Path) -> None:
    """On timeout the whole process group goes, xdist workers included."""
    wt = tree(tmp_path / "wt", tests="import time\n\ndef test_hang():\n    time.sleep(300)\n")
    with pytest.raises(TestRunError, match="took longer than 5s"):
        run_tests(
            wt, user_repo=tmp_path / "user", scratch=tmp_path / "s", label="a", workers=2, timeout=5
        )
    left = [p for p in psutil.process_iter(["cwd"]) if (p.info["cwd"] or "").startswith(str(wt))]
    assert left == []


def test_a_suite_that_would_exhaust_memory_is_stopped_by_the_gauge(tmp_path: Path) -> None:
    """A test that allocates without bound is stopped by the gauge and the run says so."""
    from pytest_orchestrator.guard.pressure import PressureGauge

    hog = (
        "import time\n\n"
        "def test_hog():\n"
        "    blocks = []\n"
        "    for _ in range(1000):\n"
        "        blocks.append(bytearray(10 * 2**20))\n"
        "        time.sleep(0.02)\n"
    )
    wt = tree(tmp_path / "wt", tests=hog)
    probe = PressureGauge(interval=0.05)
    baseline_bytes = probe.sample().rss_bytes
    # Room for ~1 GiB more than this process holds now; the hog wants 10 GiB.
    gauge = PressureGauge(interval=0.05, threshold=0.7, available_bytes=baseline_bytes + 2**30)
    with gauge, pytest.raises(TestRunError, match="stopped by the memory gauge"):
        run_tests(wt, user_repo=tmp_path / "user", scratch=tmp_path / "s", label="a", gauge=gauge)
    assert any(e.kind == "stopped_child" for e in gauge.events)
    # Not asserted: how close to 0.7 the peak got (machine speed; bench_pressure.py).
