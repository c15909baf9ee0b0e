"""The rename's definition search parses only files that may define the name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_orchestrator.phases.execute import refactor
from pytest_orchestrator.phases.execute.refactor import files_defining, find_definitions
from pytest_orchestrator.phases.map.index import SearchIndex, TreeIndex
from tests.conftest import commit_all, git

DEFINING = {
    "a.py": "def target(x):\n    return x\n",
    "b.py": "async def target():\n    pass\n",
    "c.py": "class target:\n    pass\n",
    "d.py": "target = 1\n",
    "e.py": "target: int = 1\n",
    "f.py": "class K:\n    def target(self):\n        pass\n",
    "g.py": "target=2\n",
}
MENTIONING = {
    "use.py": "from a import target\nprint(target(1))\nif target == 2:\n    pass\n",
    "other.py": "def target_more():\n    pass\nmy_target = 3\n",
}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for name, text in {**DEFINING, **MENTIONING}.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def test_only_files_with_a_defining_line_are_candidates(tree: Path) -> None:
    assert files_defining(tree, "target") == sorted(DEFINING)


def test_every_definition_is_still_found(tree: Path) -> None:
    found = {(d.path, d.qualname) for d in find_definitions(tree, "target")}
    assert found == {(p, "target") for p in DEFINING if p != "f.py"} | {("f.py", "K.target")}


# ---------------------------------------------------------------- from the identifier index

#: Files that may or may not define ``target`` by ripgrep's reading of the pattern.
TRICKY = {
    **DEFINING,
    **MENTIONING,
    "tabs.py": "async\tdef \t target():\n    pass\n",
    "attr.py": "class K:\n    target = 1\n    target2 = 2\n",
    "colon.py": "target\t:\tint\n",
    "compare.py": "target == 2\ntarget  ==3\n",
    "feed.py": "\fdef target():\n    pass\n",  # a form feed is not [ \t]: no match
    "accent.py": "def target\u00e9():\n    pass\n",  # no word boundary after the name
    "crlf.py": "target =\\\r\n    1\r\nx = 1\r\n",
    "bom.py": "\ufeffdef target():\n    pass\n",
    "stub.pyi": "def target() -> None: ...\n",
    "text.py": 'x = "def target(): pass"\n# class target\n',
    "deep/er/mod.py": "if True:\n        target = 3\n",
    "binary.py": "def target():\n    pass\n\0\n",  # ripgrep skips a binary file
    ".hidden/h.py": "def target():\n    pass\n",
    "ignored/i.py": "def target():\n    pass\n",  # tracked, but git-ignored
    "big.py": "def target():\n    pass\n" + "# padding\n" * 110_000,  # over 1 MiB
    ".gitignore": "ignored/\n",
}
NAMES = ["target", "K", "x", "target2", "target_more", "absent", "def", "pass", "int"]


@pytest.fixture
def indexed_repo(tmp_path: Path) -> tuple[Path, TreeIndex]:
    """`TRICKY`, committed (the ignored file too), a symlink beside, and the index of its tree."""
    repo = tmp_path / "repo"
    for name, text in TRICKY.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode())
    (repo / "link.py").symlink_to("a.py")
    git(repo, "init", "-q", "-b", "main")
    commit_all(repo)
    git(repo, "add", "-f", "ignored/i.py")
    commit_all(repo, "ignored, tracked")
    tree = git(repo, "rev-parse", "HEAD^{tree}").strip()
    store = SearchIndex.open(tmp_path / "cache")
    assert store.update(repo, tree)
    found = store.tree(repo, tree)
    assert found is not None
    return repo, found


def test_the_index_lists_what_ripgrep_lists(
    indexed_repo: tuple[Path, TreeIndex], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, tree = indexed_repo
    by_ripgrep = {name: files_defining(repo, name) for name in NAMES}
    assert "feed.py" not in by_ripgrep["target"]  # the sanity checks of this test
    assert {"attr.py", "crlf.py", "bom.py", "tabs.py"} <= set(by_ripgrep["target"])

    def no_ripgrep(root: Path, *args: str) -> list[str]:
        raise AssertionError(f"ripgrep ran: {args}")

    monkeypatch.setattr(refactor, "_files_matching", no_ripgrep)
    with refactor.indexed(repo, tree.files_with_line):
        by_index = {name: files_defining(repo, name) for name in NAMES}
    assert by_index == by_ripgrep


def test_the_same_definitions_are_found(indexed_repo: tuple[Path, TreeIndex]) -> None:
    repo, tree = indexed_repo
    with refactor.indexed(repo, tree.files_with_line):
        from_index = find_definitions(repo, "target")
    assert from_index == find_definitions(repo, "target")
    assert {"a.py", "attr.py", "crlf.py", "stub.pyi"} <= {d.path for d in from_index}


def test_the_index_is_asked_only_about_its_own_tree(
    indexed_repo: tuple[Path, TreeIndex], tmp_path: Path
) -> None:
    """Another root, or a name the index cannot answer (not ASCII), is ripgrep's."""
    repo, tree = indexed_repo
    other = tmp_path / "other"
    other.mkdir()
    (other / "mine.py").write_text("def target():\n    pass\n")
    asked: list[str] = []

    def lines(name: str, pattern: re.Pattern[str]) -> list[str] | None:
        asked.append(name)
        return tree.files_with_line(name, pattern)

    (repo / "uni.py").write_text("def t\u00e4rget():\n    pass\n")  # not in the index: rg
    with refactor.indexed(repo, lines):
        assert files_defining(other, "target") == ["mine.py"]
        assert files_defining(repo, "t\u00e4rget") == ["uni.py"]
    assert asked == ["t\u00e4rget"]
