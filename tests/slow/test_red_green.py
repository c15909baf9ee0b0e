"""Red-green on the bundled example: a new failing test for a new sizing rule is the spec.

Real ``pytest --orchestrate`` runs in subprocesses on a fresh copy of ``examples/wheel``
with the failing test committed, driven by the scripted planner (the plans are given; what
is tested is what the orchestrator does with them).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import commit_all, git

EXAMPLE = Path(__file__).parents[2] / "examples" / "wheel"
COMMAND = "Add contracts_within_cap so the new tests pass"
SPEC = "tests/test_cap.py"
SPEC_TEXT = '''"""A new sizing rule: never commit more than a share of the account to one strike."""

from wheel_sizing.sizing import contracts_within_cap


def test_cap_limits_contracts() -> None:
    assert contracts_within_cap(100_000.0, 50.0, 0.25) == 5


def test_cap_is_zero_for_a_tiny_account() -> None:
    assert contracts_within_cap(1_000.0, 50.0, 0.25) == 0
'''
IMPLEMENT = {
    "summary": "Add contracts_within_cap",
    "steps": [
        {
            "id": "add",
            "pool": "mutate",
            "op": "replace_block",
            "args": {
                "path": "wheel_sizing/sizing.py",
                "search": "def plan_cash_secured_put(",
                "replace": (
                    "def contracts_within_cap(account_value: float, strike: float, cap: float)"
                    " -> int:\n"
                    '    """Contracts whose collateral stays within ``cap`` of the account."""\n'
                    "    if account_value <= 0:\n"
                    "        return 0\n"
                    "    return math.floor(account_value * cap / (strike * CONTRACT_MULTIPLIER))"
                    "\n\n\ndef plan_cash_secured_put("
                ),
            },
        }
    ],
}
BREAK_KELLY = {
    "summary": "The new rule, and a change that breaks expected_log_growth",
    "steps": [
        *IMPLEMENT["steps"],
        {
            "id": "break",
            "pool": "mutate",
            "op": "replace_block",
            "args": {
                "path": "wheel_sizing/kelly.py",
                "search": "return win_prob * math.log1p(stake * win_loss_ratio)",
                "replace": "return 2 * win_prob * math.log1p(stake * win_loss_ratio)",
            },
        },
    ],
}
EDIT_SPEC = {
    "summary": "Make the spec pass by changing it",
    "steps": [
        {
            "id": "weaken",
            "pool": "mutate",
            "op": "replace_block",
            "args": {
                "path": SPEC,
                "search": "from wheel_sizing.sizing import contracts_within_cap",
                "replace": "def contracts_within_cap(*args: float) -> int:\n    return 5",
            },
        }
    ],
}


@pytest.fixture
def wheel(tmp_path: Path) -> Path:
    """A fresh git copy of the example with the new, failing spec test committed."""
    repo = tmp_path / "wheel"
    shutil.copytree(EXAMPLE, repo, ignore=shutil.ignore_patterns(".orchestrate", "__pycache__"))
    git(repo, "init", "-q", "-b", "main")
    (repo / SPEC).write_text(SPEC_TEXT)
    commit_all(repo, "wheel example with a failing spec")
    return repo


def orchestrate(repo: Path, *args: str, script: list[Any] | None = None) -> str:
    """One real run in a subprocess; its output (the exit status is the last line)."""
    extra: list[str] = []
    if script is not None:
        path = repo.parent / f"script-{len(list(repo.parent.glob('script-*')))}.json"
        path.write_text(json.dumps(script))
        extra = ["--orchestrate-planner", "scripted", "--orchestrate-script", str(path)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "ANTHROPIC"))}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *args, *extra, "-p", "no:cacheprovider"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env=env,
    )
    return proc.stdout + proc.stderr + f"\nexit {proc.returncode}"


def phases(out: str) -> list[str]:
    """The phase lines of a run's output, in order (Monte Carlo and the baseline included)."""
    names = ("map", "logic", "montecarlo", "spec", "baseline", "plan", "optimise", "execute")
    return [w[0] for line in out.splitlines() if (w := line.split()) and w[0] in names]


def runs(repo: Path) -> list[Path]:
    return sorted((repo / ".orchestrate" / "runs").iterdir())


def test_red_green_goes_green_reuses_the_baseline_and_fails_fast(wheel: Path) -> None:
    """Run 1 (cold): the implementing plan goes green, the spec red at the base and green
    after in PR.md, with the change's coverage. Run 2 (same base): the baseline is reused;
    a plan whose affected tests fail and a plan that edits the spec are both red without
    the whole suite; the third plan goes green."""
    first = orchestrate(wheel, SPEC, "--orchestrate", COMMAND, script=[IMPLEMENT])
    assert first.endswith("exit 0"), first
    assert "spec       2 named test(s)" in first or "spec       0 named test(s)" in first, first
    assert "1 file(s) not collecting at the base commit" in first, first
    assert "per-test coverage of" in first, first
    (run1,) = runs(wheel)
    pr = (run1 / "PR.md").read_text()
    spec_rows = [line for line in pr.splitlines() if line.startswith(f"| `{SPEC}::")]
    assert len(spec_rows) == 2, pr
    assert all("🔴 not collected | 🟢 passed" in row for row in spec_rows), spec_rows
    assert "## Coverage of the change" in pr
    # the tiny account's case is covered, an account of zero (`return 0`) is not
    assert "3 of 4 changed executable lines ran in the affected tests" in pr, pr
    assert "- `wheel_sizing/sizing.py`: lines " in pr
    branch = git(wheel, "branch", "--list", "orchestrate/*").strip().lstrip("* ")
    assert "def contracts_within_cap" in git(wheel, "show", f"{branch}:wheel_sizing/sizing.py")
    git(wheel, "branch", "-D", branch)

    second = orchestrate(
        wheel, SPEC, "--orchestrate", COMMAND, script=[BREAK_KELLY, EDIT_SPEC, IMPLEMENT]
    )
    assert second.endswith("exit 0"), second
    assert f"cached from run {run1.name}, base tree and environment unchanged" in second
    run2 = runs(wheel)[-1]
    record = json.loads((run2 / "run.json").read_text())
    one, two, three = record["attempts"]
    baseline_collected = record["baseline"]["collected"]
    # attempt 1: the spec passes, but its other affected tests (those covering
    # expected_log_growth) fail; the whole suite never runs
    assert one["gate"]["stage"] == "affected"
    assert 0 < one["gate"]["gate"]["collected"] < baseline_collected
    assert any("test_kelly" in t for t in one["tests_failed"]), one
    # attempt 2: editing the spec is a weakening, found before the whole suite
    assert two["gate"]["stage"] == "affected"
    assert "spec edited" in [f["kind"] for f in two["gate"]["findings"]]
    assert two["gate"]["gate"]["collected"] == 0  # no test ran: the spec was changed
    assert "integrity" in two["failed_checks"]
    # attempt 3: green through the whole suite
    assert three["green"]
    assert three["gate"]["stage"] == "full"
    assert three["gate"]["gate"]["collected"] == baseline_collected + 2
    assert record["impact"] == {"red_attempts": 2, "caught_by_affected": 2, "share": 1.0}


DRIVER = """
import json, sys
spawned = []
def audit(event, args):
    if event == "subprocess.Popen":
        spawned.append([str(a) for a in (args[1] or [args[0]])])
sys.addaudithook(audit)
import pytest
code = pytest.main(sys.argv[2:])
with open(sys.argv[1], "w") as out:
    json.dump(spawned, out)
sys.exit(code)
"""


def test_a_dry_run_starts_no_test_or_sampling_process(wheel: Path, tmp_path: Path) -> None:
    """Map, Logic and Plan only: no Python child (no baseline, no Monte Carlo sampling)."""
    spawned = tmp_path / "spawned.json"
    script = tmp_path / "script.json"
    script.write_text(json.dumps([IMPLEMENT]))
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, str(spawned), SPEC, "--orchestrate", COMMAND,
         "--orchestrate-dry-run", "--orchestrate-planner", "scripted",
         "--orchestrate-script", str(script), "-p", "no:cacheprovider"],
        cwd=wheel, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "orchestrate: dry run" in proc.stdout
    assert phases(proc.stdout) == ["map", "logic", "plan"]
    commands = json.loads(spawned.read_text())
    assert commands, "git runs (the sanity check of this test)"
    pythons = [c for c in commands if "python" in Path(c[0]).name or c[0] == sys.executable]
    assert pythons == []


def test_a_red_baseline_without_named_tests_says_how_to_name_them(wheel: Path) -> None:
    out = orchestrate(wheel, "--orchestrate", "Rename calculate_position_size to position_size")
    assert out.endswith("exit 4"), out
    assert "the tests already fail before any change" in out
    assert f"pytest {SPEC} --orchestrate" in out


def test_a_refusal_comes_before_sampling_and_the_baseline(wheel: Path) -> None:
    out = orchestrate(wheel, "--orchestrate", "Make the sizing smarter")
    assert out.endswith("exit 4"), out
    assert "the rules planner does not understand" in out
    assert phases(out) == ["map", "logic"]
