"""Red-green: the tests named on the command line are the spec of the change.

``pytest tests/test_refund.py::test_fee -k fee --orchestrate "Add refund_fee so the new tests
pass"`` names tests that may fail at the base. The controller never collects them (it loads
no conftest of the target): it hands the names to the inner runs, where pytest itself reads
them, so paths, node ids, ``-k`` and ``-m`` mean exactly what they mean to pytest.

The gate then requires, on top of baseline parity and integrity:

* every spec test of the base (through the plan's renames) and every spec test after the
  change passes, and the spec's files collect;
* the spec's files are not edited: changing the spec is weakening it (a refactor op's
  mechanical rewrite of a renamed reference excepted, as for every test file).

Without named tests nothing changes: a red baseline is refused, and the message says how to
name failing tests as the spec.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pytest_orchestrator.errors import OrchestratorError
from pytest_orchestrator.model import Finding, SpecTest, TestOutcome, TestRunResult
from pytest_orchestrator.phases.execute import integrity
from pytest_orchestrator.repo.git import git
from pytest_orchestrator.settings import TestSelection


def selection(
    args: Iterable[str], keyword: str, markexpr: str, *, invocation: Path, root: Path
) -> TestSelection:
    """The named tests, their paths made relative to the repository root.

    :raises OrchestratorError: a path lies outside the repository.
    """
    rel_args = []
    top = root.resolve()
    for arg in args:
        path, sep, rest = arg.partition("::")
        full = (invocation / path).resolve()
        if not full.is_relative_to(top):
            raise OrchestratorError(
                f"the named test {arg!r} is outside the repository {root}: name tests of "
                "the repository the run changes"
            )
        rel_args.append(full.relative_to(top).as_posix() + sep + rest)
    return TestSelection(args=rel_args, keyword=keyword.strip(), markexpr=markexpr.strip())


def check_at_base(root: Path, base_commit: str, spec: TestSelection) -> None:
    """Every named path exists in the base commit (the run starts there, not from the
    working tree).

    :raises OrchestratorError: naming the path and how to fix it.
    """
    for arg in spec.args:
        path = arg.partition("::")[0]
        if path in ("", "."):
            continue
        listed = git("ls-tree", "--name-only", base_commit, "--", path, cwd=root).strip()
        if not listed:
            raise OrchestratorError(
                f"the named test {arg!r} is not in the base commit {base_commit[:10]}: the run "
                "starts from a commit, not from your working tree. Commit the failing tests "
                "first (git add, git commit), then run again"
            )


def file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


@dataclass(frozen=True)
class Spec:
    """The spec as the base commit has it: its selection and its run there."""

    selection: TestSelection
    base: TestRunResult
    """The named tests run at the base (expected red)."""

    @property
    def ids(self) -> set[str]:
        return {t.nodeid for t in self.base.tests if t.outcome != "deselected"}

    @property
    def files(self) -> set[str]:
        """Files holding the spec: named files, files of its tests, files that failed to
        collect (a test importing what does not exist yet)."""
        named = {
            a.partition("::")[0]
            for a in self.selection.args
            if a.partition("::")[0].endswith(".py")
        }
        return (
            named
            | {file_of(i) for i in self.ids}
            | {file_of(e.nodeid) for e in self.base.collection_errors}
        )

    def covers(self, outcome: TestOutcome) -> bool:
        """Whether a failure of the base run belongs to the spec."""
        return outcome.nodeid in self.ids or file_of(outcome.nodeid) in self.files


def failing_outside(baseline: TestRunResult, spec: Spec | None) -> list[TestOutcome]:
    """Failures at the base that the spec does not explain (each one refuses the run)."""
    return [t for t in baseline.failed if spec is None or not spec.covers(t)]


def refusal(failing: list[TestOutcome], base_commit: str, spec: Spec | None) -> str:
    """Why a red baseline is refused, and how to name failing tests as the spec."""
    shown = "\n  ".join(t.nodeid for t in failing[:10])
    if spec is not None:
        return (
            f"{len(failing)} test(s) fail at {base_commit[:10]} outside the named tests "
            f"({spec.selection.shown()}), so there is no gate to hold them to. Fix them, or "
            f"name them too:\n  {shown}"
        )
    first = failing[0].nodeid if failing else "tests/test_x.py::test_y"
    return (
        f"the tests already fail before any change ({len(failing)} failing at "
        f"{base_commit[:10]}), so there is no gate to pass. Fix them first, or, if they are "
        "the specification of the change (red-green), name them on the command line: "
        f'pytest {first} --orchestrate "..." (paths, node ids and -k as pytest reads '
        f"them):\n  {shown}"
    )


def judge(spec: Spec, after: TestRunResult, names: Mapping[str, str]) -> list[SpecTest]:
    """Each spec test, red or green at the base and after the change (through renames)."""
    base = {t.nodeid: t.outcome for t in spec.base.tests if t.outcome != "deselected"}
    now = {t.nodeid: t.outcome for t in after.tests if t.outcome != "deselected"}
    seen: set[str] = set()
    found = []
    for nodeid, outcome in base.items():
        mapped = integrity.rename_identifiers(nodeid, names)
        key = nodeid if nodeid in now else mapped
        seen.add(key)
        found.append(SpecTest(nodeid=key, base=outcome, after=now.get(key, "not collected")))
    for nodeid, outcome in now.items():
        if nodeid not in seen:
            found.append(SpecTest(nodeid=nodeid, base="not collected", after=outcome))
    for error in after.collection_errors:
        found.append(SpecTest(nodeid=error.nodeid, base="not collected", after="error"))
    return found


def unmet(tests: list[SpecTest]) -> list[str]:
    """What keeps the spec red: every spec test not passing, or no spec test at all."""
    if not tests:
        return ["the named tests select no test after the change"]
    return [f"{t.nodeid}: {t.after}" for t in tests if t.after != "passed"]


def edit_findings(changed: Iterable[tuple[str, str]], spec: Spec) -> list[Finding]:
    """An edit to a spec file is a weakening, whatever the command says."""
    files = spec.files
    return [
        Finding(
            path=path,
            kind="spec edited",
            detail="the named tests are the spec of the change: the plan may not "
            + ("delete" if status == "D" else "edit")
            + " them",
        )
        for status, path in changed
        if path in files or PurePosixPath(path).as_posix() in files
    ]
