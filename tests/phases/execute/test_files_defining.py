"""The rename's definition search parses only files that may define the name."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_orchestrator.phases.execute.refactor import files_defining, find_definitions

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
