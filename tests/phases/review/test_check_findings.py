"""Baseline parity for checks: base findings are mapped through a real git diff."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_orchestrator.model import CheckFinding
from pytest_orchestrator.phases.review.findings import (
    Collector,
    diff_map,
    finding,
    new_findings,
    parse_located,
    relative,
)
from pytest_orchestrator.phases.review.tools import _mypy_parse, _ruff
from tests.conftest import commit_all, git

BASE = "".join(f"line{i}\n" for i in range(1, 11))


def repo_with(tmp_path: Path, files: dict[str, str]) -> tuple[Path, str]:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    git(tmp_path, "init", "-q", "-b", "main")
    commit_all(tmp_path)
    return tmp_path, git(tmp_path, "rev-parse", "HEAD").strip()


def f(line: int, rule: str = "E1", path: str = "m.py") -> CheckFinding:
    return CheckFinding(tool="t", rule=rule, path=path, line=line, message="m")


def test_a_base_finding_follows_its_line_past_inserted_lines(tmp_path: Path) -> None:
    root, base = repo_with(tmp_path, {"m.py": BASE})
    (root / "m.py").write_text("new1\nnew2\n" + BASE)
    moves = diff_map(root, base)
    assert new_findings([f(5)], [f(7)], moves) == []
    assert new_findings([f(5)], [f(5)], moves) == [f(5)]  # line 5 now is another line


def test_deleted_lines_move_later_findings_up(tmp_path: Path) -> None:
    root, base = repo_with(tmp_path, {"m.py": BASE})
    (root / "m.py").write_text(BASE.replace("line2\nline3\n", ""))
    assert new_findings([f(8)], [f(6)], diff_map(root, base)) == []


def test_an_edited_line_keeps_its_old_problem_but_not_a_new_rule(tmp_path: Path) -> None:
    root, base = repo_with(tmp_path, {"m.py": BASE})
    (root / "m.py").write_text(BASE.replace("line4\n", "LINE4\n"))
    moves = diff_map(root, base)
    assert new_findings([f(4)], [f(4)], moves) == []
    assert new_findings([f(4)], [f(4, rule="E2")], moves) == [f(4, rule="E2")]


def test_each_base_finding_answers_for_one_attempt_finding(tmp_path: Path) -> None:
    root, base = repo_with(tmp_path, {"m.py": BASE})
    (root / "m.py").write_text(BASE + "extra\n")
    assert new_findings([f(3)], [f(3), f(11)], diff_map(root, base)) == [f(11)]


def test_a_renamed_file_keeps_its_findings(tmp_path: Path) -> None:
    root, base = repo_with(tmp_path, {"m.py": BASE})
    git(root, "mv", "m.py", "n.py")
    assert new_findings([f(2)], [f(2, path="n.py")], diff_map(root, base)) == []


def test_ruff_json_and_mypy_text_are_read(tmp_path: Path) -> None:
    out = (
        '[{"code": "F401", "filename": "%s", "location": {"row": 3, "column": 1},'
        ' "message": "`os` imported but unused"}]' % (tmp_path / "a.py")
    )
    (found,) = _ruff(out, tmp_path) or []
    assert (found.rule, found.path, found.line) == ("F401", "a.py", 3)
    assert _ruff("not json", tmp_path) is None
    mypy = (
        'a.py:4: error: Incompatible return value type (got "str", expected "int")  '
        "[return-value]\na.py:4: note: see above\n"
    )
    (err,) = _mypy_parse(mypy, tmp_path) or []
    assert (err.rule, err.line, err.message) == (
        "return-value",
        4,
        'Incompatible return value type (got "str", expected "int")',
    )


def test_located_lines_need_a_real_file_and_messages_are_redacted(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    key = "sk-ant-api03-" + "Ab1" * 20
    out = f"a.py:1:5: W1 leaked {key}\nnot/here.py:2: X nope\nrandom text\n"
    (found,) = parse_located("tool", out, tmp_path)
    assert (found.path, found.line, found.rule) == ("a.py", 1, "W1")
    assert key not in found.message


def test_a_report_reads_like_one_finding_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Paths and messages are worked out once each; every finding is what `finding` makes."""
    monkeypatch.setenv("DEPLOY_TOKEN", "tok-4f8a9c2e1d7b6a5f")
    (tmp_path / "pkg").mkdir()
    rows = [
        ("F401", str(tmp_path / "pkg" / "a.py"), 1, "`os`   imported but unused"),
        ("F401", str(tmp_path / "pkg" / "a.py"), 2, "`os`   imported but unused"),
        ("E501", "./pkg/b.py", 3, "token tok-4f8a9c2e1d7b6a5f " + "x" * 400),
        ("E501", "/elsewhere/c.py", 4, "line too long"),
    ]
    make = Collector("ruff", tmp_path)
    made = [make(*row) for row in rows]
    assert made == [finding("ruff", r, relative(p, tmp_path), n, m) for r, p, n, m in rows]
    assert [x.path for x in made] == ["pkg/a.py", "pkg/a.py", "pkg/b.py", "/elsewhere/c.py"]
    assert "tok-4f8a9c2e1d7b6a5f" not in made[2].message
    assert len(made[2].message) <= 300
