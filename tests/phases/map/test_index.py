"""The identifier index answers Map's searches exactly as ripgrep does, and survives commits,
corruption and interruption."""

from __future__ import annotations

import shutil
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import pytest_orchestrator
from pytest_orchestrator.phases.map import index as index_mod
from pytest_orchestrator.phases.map import search
from pytest_orchestrator.phases.map.index import SearchIndex
from pytest_orchestrator.phases.map.phase import map_repository
from pytest_orchestrator.phases.map.search_cache import tree_state
from tests.conftest import commit_all, git

#: Files that exercise every corner of ripgrep's passes, beside the package's own source.
EDGES = {
    # the assignment form of a definition swallows the next name ("x=y")
    "edges/assign.py": "QueuePool=Session\nQueuePool: Pool = Session\n    QueuePool = 1\n",
    # more matching lines than ripgrep's per-file cap
    "edges/many.py": "".join(f"pool_{i} = timeout_pool_{i}  # pool\n" for i in range(300)),
    # a match longer than --max-columns
    "edges/long.py": "x = " + "a" * 420 + "pool" + " pool\n",
    # a quoted phrase, overlapping identifiers
    "edges/phrase.py": 'msg = "pool timeout reached"  # QueuePool timeout\n',
    "edges/bom.py": "\ufeffdef QueuePool():\n    pass\n",
    "edges/binary.py": "pool = 1\n\0\n",
    "edges/stub.pyi": "def get_pool() -> QueuePool: ...\n",
    "edges/imports.py": (
        "from .pool import QueuePool\nimport session, pool\n  from x.pool.y import z\n"
    ),
    # import lines: CRLF ends, a BOM before one, tabs, a parenthesised list, a comment
    "edges/crlf.py": "from .pool import QueuePool\r\nimport  pool\r\nx = 1\r\n",
    "edges/bom_import.py": "\ufefffrom session import pool\n",
    "edges/tabs.py": "if x:\n\timport\tsession\n",
    "edges/paren.py": "from .model import (\n    pool,\n)\nx = pool  # import pool\n",
    ".hidden/pool.py": "pool = 1\n",
    "ignored/pool.py": "pool = 1\n",
}
QUERIES = [
    ("pool", "timeout", "session"),
    ("map", "slice", "search"),
    ("run", "plan", "gate"),
]
NAMES = ["QueuePool", "Session", "map_repository", "SearchCache", "Run", "Pool", "x"]
LEAVES = ["pool", "search", "phase", "run", "model", "session"]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """The package's own source plus `EDGES`, committed (one ignored file tracked anyway)."""
    repo = tmp_path / "repo"
    shutil.copytree(
        Path(pytest_orchestrator.__file__).parent,
        repo / "pytest_orchestrator",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    for name, text in EDGES.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_bytes(text.encode())
    git(repo.parent, "init", "-q", "-b", "main", str(repo))
    commit_all(repo)
    (repo / ".gitignore").write_text("ignored/\n")
    commit_all(repo, "ignore")
    return repo


def built(repo: Path, cache: Path) -> index_mod.TreeIndex:
    tree = tree_state(repo)
    assert tree is not None
    store = SearchIndex.open(cache)
    assert store.update(repo, tree)
    found = store.tree(repo, tree)
    assert found is not None
    return found


def test_same_answers_as_ripgrep(corpus: Path, tmp_path: Path) -> None:
    tree = built(corpus, tmp_path / "cache")
    for words in QUERIES:
        for phrases in ((), ("pool timeout",), ("QueuePool t",)):
            expected = search.count_terms(corpus, words, ["QueuePool"], phrases)
            got = tree.count_terms(words, ["QueuePool"], phrases)
            assert got is not None
            assert got.words == expected.words
            assert got.phrases == expected.phrases
    idents = tree.find_identifiers(NAMES)
    assert idents is not None
    expected_idents = search.find_identifiers(corpus, NAMES)
    assert idents.counts == expected_idents.counts
    assert idents.definitions == expected_idents.definitions
    assert tree.find_import_lines(LEAVES) == search.find_import_lines(corpus, LEAVES)
    assert tree.nearby_names(["QueuPool", "map_repositroy"]) == search.nearby_names(
        corpus, ["QueuPool", "map_repositroy"]
    )
    # the corners were really there: the cap, hidden and ignored files, the stub
    many = search.count_terms(corpus, ["pool"])
    assert many.words["edges/many.py"]["pool"] == search.MAX_LINES_PER_FILE * 3
    assert not {".hidden/pool.py", "ignored/pool.py", "edges/binary.py"} & many.files
    assert "edges/stub.pyi" in many.files


def test_import_lines_come_from_the_index_alone(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The importers of a module are found in the index's stored import lines: no file or
    git object is read, and the answer is ripgrep's."""
    tree = built(corpus, tmp_path / "cache")
    expected = search.find_import_lines(corpus, LEAVES)

    def no_reading(*args: object, **kwargs: object) -> None:
        raise AssertionError("a file was read")

    monkeypatch.setattr(index_mod.TreeIndex, "_contents", no_reading)
    monkeypatch.setattr(index_mod, "read_blobs", no_reading)
    monkeypatch.setattr(index_mod, "_checked_out", no_reading)
    got = tree.find_import_lines(LEAVES)
    assert got == expected
    # the edge files were there, each with ripgrep's lines
    assert got["edges/crlf.py"] == ["from .pool import QueuePool", "import  pool"]
    assert got["edges/bom_import.py"] == ["from session import pool"]
    assert got["edges/tabs.py"] == ["import\tsession"]
    assert got["edges/paren.py"] == ["from .model import ("]


def test_an_index_of_the_previous_schema_is_rebuilt(corpus: Path, tmp_path: Path) -> None:
    """A file written before the import lines were stored is not used: it starts afresh."""
    cache = tmp_path / "cache"
    built(corpus, cache).store.close()
    with sqlite3.connect(cache / index_mod.FILENAME) as db:
        db.execute(f"PRAGMA user_version = {index_mod.SCHEMA_VERSION - 1}")
        db.execute("DROP TABLE imports")
    db.close()
    tree = tree_state(corpus)
    assert tree is not None
    store = SearchIndex.open(cache)
    assert not store.has(tree)
    assert store.update(corpus, tree)
    found = store.tree(corpus, tree)
    assert found is not None
    assert found.find_import_lines(LEAVES) == search.find_import_lines(corpus, LEAVES)
    store.close()


def test_what_the_index_cannot_say_is_left_to_ripgrep(corpus: Path, tmp_path: Path) -> None:
    tree = built(corpus, tmp_path / "cache")
    assert tree.count_terms(["pool"], phrases=["-> ..."]) is None
    assert tree.count_terms(["pööl"]) is None
    assert tree.find_identifiers(["class", "QueuePool"]) is None


def test_a_new_commit_indexes_only_its_new_blobs(corpus: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    built(corpus, cache)
    store = SearchIndex.open(cache)
    assert store._db is not None
    (before,) = store._db.execute("SELECT COUNT(*) FROM blobs").fetchone()
    (corpus / "edges" / "assign.py").write_text("from .session import Pool\nQueuePool = Pool\n")
    (corpus / "edges" / "copy.py").write_text((corpus / "edges" / "imports.py").read_text())
    commit_all(corpus, "change")
    tree = built(corpus, cache)
    (after,) = store._db.execute("SELECT COUNT(*) FROM blobs").fetchone()
    assert after == before + 1  # the copy is an old blob under a new path
    # the new blob's import lines were stored with it; the copy's are the old blob's
    imports = tree.find_import_lines(LEAVES)
    assert imports == search.find_import_lines(corpus, LEAVES)
    assert imports["edges/assign.py"] == ["from .session import Pool"]
    assert imports["edges/copy.py"] == imports["edges/imports.py"]
    got = tree.find_identifiers(["QueuePool", "Pool"])
    assert got is not None
    assert got.counts["edges/assign.py"] == {"QueuePool": 1, "Pool": 2}
    phrases = tree.count_terms([], phrases=["pool timeout"])
    assert phrases is not None
    assert phrases.phrases == search.count_terms(corpus, [], phrases=["pool timeout"]).phrases
    assert "edges/phrase.py" in phrases.files


def test_a_corrupt_file_is_rebuilt(corpus: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / index_mod.FILENAME).write_bytes(b"not a database" * 100)
    tree = built(corpus, cache)
    assert tree.find_identifiers(["QueuePool"]) == search.find_identifiers(corpus, ["QueuePool"])


def test_a_half_built_index_is_never_used(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index_mod, "BATCH_BLOBS", 10)
    cache = tmp_path / "cache"
    tree = tree_state(corpus)
    assert tree is not None
    store = SearchIndex.open(cache)
    stop = threading.Event()
    real_write = index_mod._Builder.write

    def write_then_stop(
        self: index_mod._Builder, batch: list[tuple[str, tuple[dict[bytes, int], bytes]]]
    ) -> None:
        real_write(self, batch)
        stop.set()  # interrupted after the first batch

    monkeypatch.setattr(index_mod._Builder, "write", write_then_stop)
    assert not store.update(corpus, tree, stop=stop)
    assert store.tree(corpus, tree) is None
    assert store._db is not None
    (kept,) = store._db.execute("SELECT COUNT(*) FROM blobs").fetchone()
    assert kept == 10
    # Map does not use it: it searches with ripgrep and asks for the build
    asked: list[str] = []
    result = map_repository(corpus, "QueuePool timeout", blob_index=store, build_index=asked.append)
    assert result.stats["index"] == 0.0
    assert asked == [tree]
    monkeypatch.setattr(index_mod._Builder, "write", real_write)
    assert store.update(corpus, tree)  # continues: the kept batch is not read again
    assert store.tree(corpus, tree) is not None


def test_map_gives_the_same_result_from_the_index(corpus: Path, tmp_path: Path) -> None:
    store = SearchIndex.open(tmp_path / "cache")
    built(corpus, tmp_path / "cache")
    for command in ("QueuePool timeout is ignored", "map_repository should use the SearchCache"):
        plain = map_repository(corpus, command)
        indexed = map_repository(corpus, command, blob_index=store)
        assert indexed.stats["index"] == 1.0
        assert [(r.slice.path, r.slice.symbol, r.score) for r in indexed.slices] == [
            (r.slice.path, r.slice.symbol, r.score) for r in plain.slices
        ]


def test_unreadable_store_means_ripgrep(tmp_path: Path, make_repo: Callable[..., Path]) -> None:
    repo = make_repo()
    store = SearchIndex.open(tmp_path / "cache")
    assert store._db is not None
    store._db.close()
    store._db = None
    tree = tree_state(repo)
    assert tree is not None
    assert not store.update(repo, tree)
    assert store.tree(repo, tree) is None


def test_the_hook_builds_the_index_aside_and_the_next_map_uses_it(
    make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    """A cold Map answers with ripgrep and starts the build in a process of its own (as a
    registered group, which a session's cleanup would stop); once it is done, Map uses it."""
    from types import SimpleNamespace
    from typing import cast

    from pytest_orchestrator.guard import containment
    from pytest_orchestrator.phases.map.phase import pytest_orchestrator_map
    from pytest_orchestrator.run import Run

    repo = make_repo({"pool.py": "class QueuePool:\n    timeout = 1\n"})
    cache = tmp_path / "cache"
    run = SimpleNamespace(
        command="QueuePool ignores its timeout",
        worktree=repo,
        cache=None,
        settings=SimpleNamespace(cache_dir=cache, dry_run=False, fresh=False),
        base_tree=None,
        report=lambda line: None,
    )
    before = set(containment.registered())
    first = pytest_orchestrator_map(cast(Run, run))
    assert first.stats["index"] == 0.0
    started = set(containment.registered()) - before
    assert len(started) <= 1  # (a fast build may be reaped already)
    tree = tree_state(repo)
    assert tree is not None
    store = SearchIndex.open(cache)
    deadline = threading.Event()
    for _ in range(600):  # the build of a two-file tree: wait for it, however loaded
        if store.has(tree):
            break
        deadline.wait(0.1)
    assert store.has(tree)
    run.settings.fresh = True  # not the first Map's stored result: Map again
    second = pytest_orchestrator_map(cast(Run, run))
    assert second.stats["index"] == 1.0
    assert [r.slice.symbol for r in second.slices] == [r.slice.symbol for r in first.slices]


def test_the_build_process_never_imports_from_the_checkout(
    make_repo: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Started from the user's checkout (pytest's working directory), the build still imports
    only our own modules: a module of the repository named like one it needs is not run, and
    nothing is compiled into the checkout."""
    repo = make_repo({"sqlite3.py": "raise SystemExit(7)\n", "pool.py": "class QueuePool: ...\n"})
    tree = tree_state(repo)
    assert tree is not None
    monkeypatch.chdir(repo)
    proc = index_mod.start_build(repo, tree, tmp_path / "cache")
    assert proc.wait(timeout=300) == 0
    assert SearchIndex.open(tmp_path / "cache").has(tree)
    assert not list(repo.rglob("__pycache__"))
