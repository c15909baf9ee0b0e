"""The gate: the orchestrator's own run of the whole suite, judged against the base.

A plan proposes; the gate decides. After an attempt's steps, the orchestrator runs the
target's suite itself — plan ``run_tests`` steps are earlier, narrower feedback and never
stand in for it — and the attempt is green only if:

* **the base's test configuration** is the one in effect. The gate run is started with
  ``-c`` naming a copy of the base commit's pytest config file (an empty ``pytest.ini``
  when the base had none), ``--rootdir`` the worktree and ``--confcutdir`` where the base
  had it. ``-c`` rather than restoring files in the tree: no ini file the change adds or
  edits anywhere (``pytest.ini`` beats ``pyproject.toml``; ``tox.ini``, ``setup.cfg``)
  can be picked up, and the change's own files stay as they are for the commit.
  Test files, conftests included, that the change edits without being allowed to (below)
  are put back to their base text for the run, so the base's tests judge the new code;
* **baseline parity** holds: every test that passed at the base is collected and passes,
  its id mapped through the plan's renames (``test_x[old_name]`` -> ``test_x[new_name]``);
  not collected, skipped, xfailed or deselected is red, each id named;
* **nothing weakens it in the diff** (`pytest_orchestrator.phases.execute.integrity`), nor
  swaps out the code the tests call (`pytest_orchestrator.phases.execute.substitution`).

Test files may change only as the mechanical result of a refactor op (rope rewriting
imports and calls) or when the command asks for test changes in words ("add tests for …").
Those words mark the result *tests changed*: PR.md shows the test diff first and
``--orchestrate-merge`` leaves it unmerged unless ``--orchestrate-allow-test-changes``.
Weakening findings stay red either way: words may ask for tests, not for fewer of them.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Final

from pytest_orchestrator.model import (
    ChangeCoverage,
    Finding,
    GateResult,
    SpecTest,
    StepResult,
    TestOutcome,
    TestRunResult,
)
from pytest_orchestrator.options import (
    COVERAGE_BUDGET_SHARE,
    GATE_TIMEOUT_FACTOR,
    GATE_TIMEOUT_FLOOR,
)
from pytest_orchestrator.phases.execute import integrity, substitution
from pytest_orchestrator.phases.execute.child.inner import selected
from pytest_orchestrator.plan import Plan
from pytest_orchestrator.repo.files import is_test_path
from pytest_orchestrator.repo.git import changes_since, git
from pytest_orchestrator.repo.layout import source_roots

REFACTOR_OPS: Final = frozenset(
    {"rename_symbol", "move_symbol", "rename_module", "change_signature", "extract", "inline"}
)
"""Ops whose edits to test files are mechanical (rope rewrites references, nothing else).
``inline`` is refused when planned for a function the tests call (`reshape.check_inline`)."""


@dataclass(frozen=True)
class Change:
    """One changed file: ``status`` is git's A (added), D (deleted) or M (modified)."""

    status: str
    path: str


def changes(tree: Path, base_commit: str) -> list[Change]:
    """Every file the attempt changed against the base (renames as delete + add), read
    without touching the index: the gate starts while later scan steps still run."""
    return [Change(status, path) for status, path in changes_since(tree, base_commit)]


def base_blob(tree: Path, base_commit: str, path: str) -> bytes | None:
    """A file's bytes at the base commit, or None when it did not exist there."""
    proc = subprocess.run(
        ["git", "show", f"{base_commit}:{path}"], cwd=tree, capture_output=True, check=False
    )
    return proc.stdout if proc.returncode == 0 else None


def base_text(tree: Path, base_commit: str, path: str) -> str:
    return (base_blob(tree, base_commit, path) or b"").decode("utf-8", errors="replace")


def renames(plan: Plan) -> dict[str, str]:
    """Old name -> new name for every rename step of the plan (the last dotted part)."""
    return {
        str(step.args["symbol"]).split(".")[-1]: str(step.args["new_name"])
        for step in plan.steps
        if step.op == "rename_symbol" and "symbol" in step.args and "new_name" in step.args
    }


def map_id(nodeid: str, names: Mapping[str, str]) -> str:
    """A base test id as the renames make it (whole identifiers only)."""
    return integrity.rename_identifiers(nodeid, names)


def test_files(baseline: TestRunResult) -> set[str]:
    """Files that held tests at the base (what pytest collected, whatever its patterns)."""
    return {t.nodeid.split("::", 1)[0] for t in baseline.tests}


def files_tests_name(
    tree: Path, base_commit: str, changed: Iterable[Change], held: set[str]
) -> set[str]:
    """Changed files that are not Python but whose name a test file holds at the base
    (expected outputs, snapshots, fixtures' data, wherever they live): editing one edits
    what the tests expect, so it counts as a test edit. Configuration files are left to
    `integrity`, which compares their pytest settings."""
    data = set()
    for change in changed:
        name = PurePosixPath(change.path).name
        if change.status == "A" or name.endswith((".py", ".pyi")) or name in integrity.CONFIG_FILES:
            continue  # configuration has its own checks (`integrity`)
        listed = git(
            "grep", "-l", "-z", "-F", "-e", name, base_commit, cwd=tree, check=False,
            read_only=True,
        )  # fmt: skip
        naming = (entry.split(":", 1)[-1] for entry in listed.split("\0") if entry)
        if any(path in held or is_test_path(path) for path in naming):
            data.add(change.path)
    return data


@dataclass(frozen=True)
class TestEdits:
    """How the attempt touched the tests, and which of those edits are allowed."""

    __test__ = False

    mechanical: list[str]
    """Test files changed only by refactor ops."""
    free: dict[str, list[str]]
    """Test files changed otherwise -> the ops (or "no step") that changed them."""
    allowed_because: str
    """The command's words that allow test changes, or ""."""

    @property
    def changed(self) -> list[str]:
        return sorted({*self.mechanical, *self.free})

    @property
    def restore(self) -> list[str]:
        """Test files to put back to the base for the gate run."""
        return [] if self.allowed_because else sorted(self.free)


def classify(
    changed: Iterable[Change],
    steps: Iterable[StepResult],
    *,
    is_test: set[str],
    command: str,
) -> TestEdits:
    """Sort the changed test files into mechanical and free edits (attributed to steps)."""
    by_file: dict[str, set[str]] = {}
    for step in steps:
        for path in step.changed_files:
            by_file.setdefault(path, set()).add(step.op)
    mechanical, free = [], {}
    for change in changed:
        if not (change.path in is_test or is_test_path(change.path)):
            continue
        ops = by_file.get(change.path, set())
        if ops and ops <= REFACTOR_OPS:
            mechanical.append(change.path)
        else:
            free[change.path] = sorted(ops) or ["no step"]
    return TestEdits(sorted(mechanical), free, integrity.tests_requested(command))


def findings(
    tree: Path,
    base_commit: str,
    changed: list[Change],
    edits: TestEdits,
    *,
    is_test: set[str],
    names: Mapping[str, str],
) -> list[Finding]:
    """Every way the diff weakens the gate, plus free test edits when none are allowed."""
    files: list[integrity.FileChange] = []
    code: list[integrity.FileChange] = []
    for change in changed:
        name = PurePosixPath(change.path).name
        test = change.path in is_test or is_test_path(change.path)
        if test or name in integrity.CONFIG_FILES or name.endswith(".py"):
            old = None if change.status == "A" else base_text(tree, base_commit, change.path)
            new_path = tree / change.path
            new = None if change.status == "D" else new_path.read_text("utf-8", errors="replace")
            (files if test or name in integrity.CONFIG_FILES else code).append(
                integrity.FileChange(change.path, old, new)
            )
        elif change.status == "A":  # only its name matters (sitecustomize, .pth, shadowing)
            files.append(integrity.FileChange(change.path, None, ""))
    found = integrity.findings(
        [*files, *(c for c in code if c.base is None)],
        is_test=lambda p: p in is_test or is_test_path(p),
        renames=names,
    )
    project = substitution.Project(
        modules=project_modules(tree, base_commit),
        changed=frozenset(
            name for c in code for name in substitution.changed_definitions(c.base, c.new)
        ),
        is_package=lambda folder: (tree / folder / "__init__.py").is_file(),
    )
    found += substitution.findings(
        [*files, *code],
        is_test=lambda p: p in is_test or is_test_path(p),
        project=project,
        renames=names,
    )
    if not edits.allowed_because:
        for path, ops in sorted(edits.free.items()):
            found.append(
                Finding(
                    path=path,
                    kind="test edited",
                    detail=f"changed by {', '.join(ops)}: test files"
                    + (
                        ""
                        if path.endswith(".py") or is_test_path(path)
                        else " (and files the tests name)"
                    )
                    + " change only through a refactor op, or when the command asks for test "
                    "changes in words",
                )
            )
    return found


def project_modules(tree: Path, base_commit: str) -> dict[str, frozenset[str]]:
    """The project's top-level importable names at the base (`substitution.top_level`)."""
    listed = git("ls-tree", "-r", "-z", "--name-only", base_commit, cwd=tree, read_only=True)
    paths = [p for p in listed.split("\0") if p.endswith(".py") and not is_test_path(p)]
    return substitution.top_level(paths, ["", *source_roots(tree)])


def config_args(tree: Path, scratch: Path, base_commit: str, inifile: str | None) -> list[str]:
    """Options that make a pytest run in ``tree`` use the base commit's configuration."""
    where = scratch / "gate-config"
    where.mkdir(parents=True, exist_ok=True)
    if inifile is None:
        ini, confcut = where / "pytest.ini", tree
        ini.write_text("", encoding="utf-8")  # an empty pytest.ini: pytest's defaults
    elif PurePosixPath(inifile).is_absolute():
        ini, confcut = Path(inifile), Path(inifile).parent  # outside the repository
    else:
        ini = where / PurePosixPath(inifile).name
        ini.write_text(base_text(tree, base_commit, inifile), encoding="utf-8")
        confcut = tree / PurePosixPath(inifile).parent
    return ["-c", str(ini), f"--rootdir={tree}", f"--confcutdir={confcut}"]


def timeout(baseline: TestRunResult) -> float:
    """Seconds an attempt's test run may take: sized from the baseline's, with a floor."""
    return max(GATE_TIMEOUT_FLOOR, GATE_TIMEOUT_FACTOR * baseline.seconds)


def coverage_budget(baseline: TestRunResult) -> float:
    """Seconds (at the base) of the tests the change's coverage is measured in, at most:
    under Python 3.11's tracer hot code ran 3.5x slower (more-itertools' suite). A share of
    the suite's own test time, so the choice does not depend on how busy the machine is."""
    return COVERAGE_BUDGET_SHARE * sum(t.duration for t in baseline.tests)


def merge(first: TestRunResult, second: TestRunResult) -> TestRunResult:
    """Two runs of one attempt as one result (the spec's and the other affected tests'; the
    affected tests' and the rest of the suite's): a test deselected in one run and run in
    the other counts as run."""
    tests: dict[str, TestOutcome] = {}
    for test in first.tests + second.tests:
        if test.nodeid not in tests or tests[test.nodeid].outcome == "deselected":
            tests[test.nodeid] = test
    ok = (0, 5)
    status = first.exitstatus if first.exitstatus not in ok else second.exitstatus
    if status in ok and first.exitstatus in ok and second.exitstatus in ok:
        status = 0 if 0 in (first.exitstatus, second.exitstatus) else 5
    return first.model_copy(
        update={
            "exitstatus": status,
            "tests": list(tests.values()),
            "collection_errors": first.collection_errors + second.collection_errors,
            "seconds": round(first.seconds + second.seconds, 3),
            "command": [*first.command, ";", *second.command],
        }
    )


def first_part(whole: TestRunResult, first: Iterable[str]) -> TestRunResult:
    """The tests of a run with a first group (`testrun.run_tests`' ``first``) that belong to
    that group, as a run of their own: red when one of them is, or when the run's collection
    failed (either stops the run after the group)."""
    wanted = set(first)
    tests = [t for t in whole.tests if t.outcome != "deselected" and selected(t.nodeid, wanted)]
    part = whole.model_copy(update={"tests": tests})
    status = 1 if part.failed else (0 if tests else 5)
    return part.model_copy(update={"exitstatus": status})


def parity(
    baseline: TestRunResult,
    gate: TestRunResult,
    names: Mapping[str, str],
    only: set[str] | None = None,
) -> list[str]:
    """Base-passing tests that do not pass in the gate run (failures are the tests check's);
    ``only``: the run selected these ids (as renamed), the others are not expected in it."""
    outcomes = {t.nodeid: t.outcome for t in gate.tests}
    missing = []
    for test in baseline.tests:
        if test.outcome != "passed":
            continue
        mapped = map_id(test.nodeid, names)
        if only is not None and mapped not in only and test.nodeid not in only:
            continue
        outcome = outcomes.get(test.nodeid) or outcomes.get(mapped)
        shown = test.nodeid if mapped == test.nodeid else f"{test.nodeid} (as {mapped})"
        if outcome is None:
            missing.append(f"{shown}: not collected")
        elif outcome not in ("passed", "failed", "error"):
            missing.append(f"{shown}: now {outcome}")
    return missing


def judge(
    baseline: TestRunResult,
    gate: TestRunResult,
    *,
    names: Mapping[str, str],
    diff_findings: list[Finding],
    edits: TestEdits,
    config: str,
    spec: list[SpecTest] | None = None,
    affected: TestRunResult | None = None,
    only: set[str] | None = None,
    affected_ids: int = 0,
    coverage: ChangeCoverage | None = None,
) -> GateResult:
    """The gate's verdict data for one attempt (Review turns it into checks). ``only``: the
    attempt stopped after its affected tests (these ids), ``gate`` is that run."""
    found = list(diff_findings)
    base_n = sum(t.outcome != "deselected" for t in baseline.tests)
    gate_n = sum(t.outcome != "deselected" for t in gate.tests)
    if only is None and gate_n < base_n:
        found.append(
            Finding(
                path="<suite>",
                kind="fewer tests collected",
                detail=f"{base_n} at the base, {gate_n} in the gate run",
            )
        )
    return GateResult(
        baseline=baseline.counts(),
        gate=gate.counts(),
        missing=parity(baseline, gate, names, only),
        findings=found,
        config=config,
        tests_changed=edits.changed,
        allowed_because=edits.allowed_because,
        spec=spec or [],
        stage="full" if only is None else "affected",
        affected=affected.counts() if affected is not None else None,
        affected_ids=affected_ids,
        coverage=coverage,
    )
