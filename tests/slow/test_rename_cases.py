"""Renames end to end on realistic little projects: stubs, a src layout, docs, an override
and a sentence ending in a period. Each is a real ``pytest --orchestrate`` run."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import commit_all, git, snapshot

KEYS = '''\
"""Cache keys.

>>> hashkey(1, 2)
(1, 2)
"""


def hashkey(*args):
    """The key of ``args``, as :func:`pkg.keys.hashkey` documents."""
    return args


def typedkey(*args):
    return hashkey(*args) + tuple(type(a).__name__ for a in args)
'''

KEYS_TESTS = """\
from pkg.keys import hashkey, typedkey


def test_hashkey():
    assert hashkey(1, 2) == (1, 2)


def test_typedkey():
    assert typedkey(1) == (1, "int")
"""


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """``files`` committed in a fresh git repository, made the cwd (beside pytester's own
    files, as ``make_repo`` does)."""

    def make(files: dict[str, str]) -> Path:
        root = pytester.path / "repo"
        write(root, files)
        monkeypatch.chdir(root)
        return root

    return make


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(root, "init", "-q", "-b", "main")
    commit_all(root)
    return root


def green(pytester: pytest.Pytester, command: str) -> tuple[Path, str, str]:
    """Run ``command``; assert green; return the run dir, the branch's diff and its stat."""
    result = pytester.runpytest_subprocess("--orchestrate", command)
    assert result.ret == 0, result.stdout.str()
    repo = Path.cwd()
    (run_dir,) = (repo / ".orchestrate" / "runs").iterdir()
    record = json.loads((run_dir / "run.json").read_text())
    assert record["outcome"] == "green"
    branch = git(repo, "branch", "--list", "orchestrate/*").strip().lstrip("* ")
    diff = git(repo, "diff", "main", branch)
    return run_dir, diff, git(repo, "diff", "--stat", "main", branch)


def changed_lines(diff: str) -> list[str]:
    return [
        line
        for line in diff.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def test_stubs_and_src_layout(pytester: pytest.Pytester, project: Callable[..., Path]) -> None:
    """cachetools' shape: src/ layout, a tests package, a .pyi twin beside each module."""
    project(
        {
            "pyproject.toml": (
                "[project]\nname = 'pkg'\nversion = '0'\n"
                "[tool.pytest.ini_options]\npythonpath = ['src']\ntestpaths = ['tests']\n"
            ),
            "src/pkg/__init__.py": 'from .keys import hashkey\n\n__all__ = ["hashkey"]\n',
            "src/pkg/keys.py": KEYS,
            "src/pkg/keys.pyi": "def hashkey(*args: object) -> tuple[object, ...]: ...\n"
            "def typedkey(*args: object) -> tuple[object, ...]: ...\n",
            "tests/__init__.py": "",
            "tests/test_keys.py": KEYS_TESTS,
        },
    )
    run_dir, diff, stat = green(pytester, "Rename hashkey to make_key")
    files = {line.split()[0] for line in stat.splitlines()[:-1]}
    assert files == {
        "src/pkg/__init__.py",
        "src/pkg/keys.py",
        "src/pkg/keys.pyi",
        "tests/test_keys.py",
    }
    lines = changed_lines(diff)
    assert all("hashkey" in line for line in lines if line.startswith("-"))
    assert len(lines) == 18  # 9 lines, each out and in once: nothing else touched
    pr = (run_dir / "PR.md").read_text()
    assert "Text mentions updated: 3" in pr  # __all__, the doctest, the :func: role


def test_docs_are_updated_and_literals_reported(
    pytester: pytest.Pytester, project: Callable[..., Path]
) -> None:
    """tabulate's shape: a README telling users to set a module constant, Sphinx docs."""
    project(
        {
            "tabulate.py": "WIDE_CHARS_MODE = True\n\n\ndef width(s):\n"
            "    return len(s) * (2 if WIDE_CHARS_MODE else 1)\n",
            "README.md": "Set `tabulate.WIDE_CHARS_MODE = False` to count each char once.\n",
            "docs/api.rst": ".. autodata:: tabulate.WIDE_CHARS_MODE\n\nSee "
            ":data:`~tabulate.WIDE_CHARS_MODE`.\n",
            "test_tabulate.py": "import tabulate\n\n\ndef test_width():\n"
            "    assert tabulate.width('ab') == 4\n",
            "cli.py": "import tabulate\n\nFLAGS = {'wide': 'WIDE_CHARS_MODE'}\n\n\n"
            "def set_flag(name, value):\n    setattr(tabulate, FLAGS[name], value)\n",
        },
    )
    run_dir, diff, _ = green(pytester, "Rename WIDE_CHARS_MODE to WIDE_CHARS.")
    assert "+Set `tabulate.WIDE_CHARS = False` to count each char once." in diff
    assert "+.. autodata:: tabulate.WIDE_CHARS" in diff
    assert "+See :data:`~tabulate.WIDE_CHARS`." in diff
    assert "cli.py" not in diff  # the literal is data: reported, not changed
    pr = (run_dir / "PR.md").read_text()
    assert "String literals naming the symbol (not changed: review them): 1" in pr
    assert "`cli.py:3`" in pr


def test_an_external_override_is_refused_and_changes_nothing(
    pytester: pytest.Pytester, project: Callable[..., Path]
) -> None:
    repo = project(
        {
            "wrap.py": "import textwrap\n\n\nclass Wrap(textwrap.TextWrapper):\n"
            "    def _handle_long_word(self, chunks, cur_line, cur_len, width):\n"
            "        cur_line.append(chunks.pop())\n",
            "test_wrap.py": "from wrap import Wrap\n\n\ndef test_wrap():\n"
            "    assert Wrap(width=3).wrap('abcdef') == ['abcdef']\n",
        },
    )
    before = snapshot(repo)
    result = pytester.runpytest_subprocess(
        "--orchestrate", "Rename Wrap._handle_long_word to _long_word"
    )
    assert result.ret == 4, result.stdout.str()
    result.stdout.fnmatch_lines(["*overrides *TextWrapper._handle_long_word*outside*refused*"])
    assert snapshot(repo) == before


def test_a_sentence_with_a_period_and_a_method(
    pytester: pytest.Pytester, project: Callable[..., Path]
) -> None:
    """inflection's shape: "Rename underscore to snake_case." with an autofunction page."""
    project(
        {
            "inflection.py": '"""Inflections.\n\n    >>> underscore("DeviceType")\n'
            '    \'device_type\'\n"""\nimport re\n\n\ndef underscore(word):\n'
            "    return re.sub(r'(?<!^)([A-Z])', r'_\\1', word).lower()\n",
            "docs/index.rst": ".. autofunction:: inflection.underscore\n",
            "test_inflection.py": "import inflection\n\n\ndef test_underscore():\n"
            "    assert inflection.underscore('DeviceType') == 'device_type'\n",
        },
    )
    _, diff, stat = green(pytester, "Rename underscore to snake_case.")
    assert "+.. autofunction:: inflection.snake_case" in diff
    assert '+    >>> snake_case("DeviceType")' in diff
    assert "3 files changed" in stat
