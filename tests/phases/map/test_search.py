"""ripgrep passes: term counts, identifiers and definitions, import lines, the file list."""

from __future__ import annotations

import subprocess
from pathlib import Path

from pytest_orchestrator.phases.map import search


def make(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_an_identifier_is_credited_to_its_sub_words(tmp_path: Path) -> None:
    """calculate_position_size counts once for each of calculate, position and size."""
    make(tmp_path, {"a.py": "x = calculate_position_size(1)\nposition = 2\n"})
    hits = search.count_terms(
        tmp_path, ["calculate", "position", "size"], ["calculate_position_size"]
    )
    assert hits.words["a.py"] == {"calculate": 1, "position": 2, "size": 1}


def test_definitions_are_found_at_any_depth_and_as_globals(tmp_path: Path) -> None:
    """def/class (also methods) and module-level assignments define a name; uses do not."""
    make(
        tmp_path,
        {
            "defs.py": "class Pool:\n    def grow(self):\n        pass\nLIMIT: int = 3\n",
            "uses.py": "from defs import Pool\nPool().grow()\nprint(LIMIT == 3)\n",
        },
    )
    found = search.find_identifiers(tmp_path, ["Pool", "grow", "LIMIT"])
    assert found.definitions == {"Pool": {"defs.py"}, "grow": {"defs.py"}, "LIMIT": {"defs.py"}}
    assert found.counts["uses.py"] == {"Pool": 2, "grow": 1, "LIMIT": 1}


def test_identifier_hits_are_not_capped_per_file(tmp_path: Path) -> None:
    """A definition after many lines of common words is still found."""
    body = "pool = 1\n" * 50 + "def QueuePool():\n    pass\n"
    make(tmp_path, {"big.py": body})
    assert search.find_identifiers(tmp_path, ["QueuePool"]).definitions == {"QueuePool": {"big.py"}}


def test_git_ignored_files_are_not_searched(tmp_path: Path) -> None:
    """.gitignore is honoured, with or without git."""
    make(
        tmp_path,
        {".gitignore": "build/\n", "build/gen.py": "widget = 1\n", "src.py": "widget = 2\n"},
    )
    assert set(search.count_terms(tmp_path, ["widget"]).words) == {"src.py"}


def test_the_file_list_comes_from_git_when_there_is_a_commit(tmp_path: Path) -> None:
    """In a git work tree the tracked Python files are listed, relative and POSIX."""
    make(tmp_path, {"pkg/a.py": "", "pkg/b.txt": "", "c.py": ""})
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    assert search.list_files(tmp_path) == ["c.py", "pkg/a.py"]


def test_import_lines_mention_the_module(tmp_path: Path) -> None:
    """Absolute, relative and plain imports of a module are found by its last name."""
    make(
        tmp_path,
        {
            "a.py": "from pkg.sizing import f\n",
            "b.py": "from .sizing import g\n",
            "c.py": "import pkg.sizing as s\n",
            "d.py": "sizing = 1\n",
        },
    )
    assert set(search.find_import_lines(tmp_path, ["sizing"])) == {"a.py", "b.py", "c.py"}
