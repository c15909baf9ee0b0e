"""Check commands are bounded: missing, hanging, flooding and file-editing commands."""

from __future__ import annotations

import sys
from pathlib import Path

from pytest_orchestrator.guard.proctree import process_start
from pytest_orchestrator.phases.review.commands import OUTPUT_LIMIT, run_command
from tests.conftest import commit_all, git


def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "a.py").write_text("x = 1\n")
    git(root, "init", "-q", "-b", "main")
    commit_all(root)
    return root


def test_a_missing_tool_is_named_not_run(tmp_path: Path) -> None:
    root = repo(tmp_path)
    out = run_command(["no-such-tool-xyz", "--check"], root, tmp_path / "s", "m", timeout=5)
    assert out.missing
    assert out.returncode is None


def test_a_hanging_check_is_stopped_with_its_whole_group(tmp_path: Path) -> None:
    root = repo(tmp_path)
    pids = tmp_path / "pids"
    script = f"echo $$ > {pids}; sleep 300 & echo $! >> {pids}; wait"
    out = run_command(["sh", "-c", script], root, tmp_path / "s", "hang", timeout=1.0)
    assert out.timed_out
    started = [int(p) for p in pids.read_text().split()]
    assert len(started) == 2
    assert all(process_start(pid) is None for pid in started)  # the shell and its sleep


def test_megabytes_of_output_are_cut(tmp_path: Path) -> None:
    root = repo(tmp_path)
    flood = f"import sys; sys.stdout.write('x' * {OUTPUT_LIMIT * 2})"
    out = run_command([sys.executable, "-c", flood], root, tmp_path / "s", "flood", timeout=60)
    assert out.truncated
    assert len(out.output) == OUTPUT_LIMIT
    assert out.returncode == 0


def test_a_command_that_edits_files_is_undone_and_reported(tmp_path: Path) -> None:
    root = repo(tmp_path)
    (root / "a.py").write_text("x = 2  # the attempt's edit\n")
    edit = (
        "from pathlib import Path; Path('a.py').write_text('rewritten\\n'); "
        "Path('new.txt').write_text('made\\n')"
    )
    out = run_command([sys.executable, "-c", edit], root, tmp_path / "s", "fix", timeout=60)
    assert sorted(out.modified) == ["a.py", "new.txt"]
    assert (root / "a.py").read_text() == "x = 2  # the attempt's edit\n"
    assert not (root / "new.txt").exists()
