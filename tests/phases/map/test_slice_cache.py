"""The slice cache: keys, vectors, ranking, persistence, concurrency and recovery."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from pytest_orchestrator.phases.map.slice_cache import (
    DIM,
    FILENAME,
    SCHEMA_VERSION,
    SliceCache,
    SliceCacheWarning,
    SliceMeta,
    embed,
    slice_key,
)

ROOT = Path(__file__).resolve().parents[3]
META = SliceMeta("pkg/sizing.py", "kelly", "function", 3, 9, 40, 180, 52)


def vec(seed: int, dim: int = DIM) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(dim).astype(np.float32)


@pytest.fixture
def cache(tmp_path: Path) -> SliceCache:
    with SliceCache.open(tmp_path) as opened:
        yield opened  # type: ignore[misc]


def fill(directory: Path, n: int) -> None:
    with SliceCache.open(directory) as filled:
        filled.put_many([(f"k{i}", vec(i), META) for i in range(n)])


# --- keys and vectors -----------------------------------------------------------------------


def test_the_key_is_gits_blob_id_of_the_raw_bytes(tmp_path: Path) -> None:
    """slice_key agrees with `git hash-object` on bytes that are not valid UTF-8."""
    raw = "def größe():\n    return 'ß'\n".encode("latin-1")
    (tmp_path / "blob").write_bytes(raw)
    git = subprocess.run(
        ["git", "hash-object", str(tmp_path / "blob")], capture_output=True, text=True, check=True
    )
    assert slice_key(raw) == git.stdout.strip()


def test_embedding_is_the_same_in_another_process() -> None:
    """Vectors are deterministic across processes (no hash randomisation)."""
    text = "def calculatePositionSize(kelly_fraction, buying_power): return kelly_fraction"
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from pytest_orchestrator.phases.map.slice_cache import embed; "
            "print(embed(sys.argv[1]).tobytes().hex())",
            text,
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "123"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == embed(text).tobytes().hex()


def test_camel_and_snake_case_spellings_embed_alike() -> None:
    """calculatePositionSize and calculate_position_size are the same features."""
    a, b = embed("calculatePositionSize(x)"), embed("calculate_position_size(x)")
    assert a.dtype == np.float32
    assert a.shape == (DIM,)
    assert float(np.linalg.norm(a)) == pytest.approx(1.0, abs=1e-6)
    assert np.array_equal(a, b)


def test_text_without_features_embeds_to_zero() -> None:
    """Keywords, stop words and one-letter names carry no features."""
    assert not embed("def f(self, x): return None if x else self").any()
    assert embed("", dim=8).shape == (8,)


def test_ranking_by_embedding_finds_the_slice_a_command_names(cache: SliceCache) -> None:
    """The command's identifiers pull the slice that uses them to the top."""
    slices = {
        "kelly": "def calculate_position_size(kelly_fraction, buying_power):\n"
        "    return kelly_fraction * buying_power",
        "vol": "def scale_by_volatility(returns, target_vol):\n    return target_vol / returns.sd",
        "bp": "class BuyingPowerLimit:\n    def check(self, order): return order.cost < self.cap",
        "io": "def load_prices(path):\n    with open(path) as f: return json.load(f)",
    }
    cache.put_many([(key, embed(text), None) for key, text in slices.items()])
    command = embed("Rename calculate_position_size to position_size")
    assert cache.topk(command, 1)[0][0] == "kelly"


def test_a_vector_of_the_wrong_dimension_is_refused(cache: SliceCache) -> None:
    """ValueError names the expected and the given dimension; nothing of the batch is stored."""
    with pytest.raises(ValueError, match=r"expected dimension 256.*got shape \(128,\)"):
        cache.put_many([("good", vec(1), None), ("bad", vec(2, 128), None)])
    with pytest.raises(ValueError, match="NaN"):
        cache.put("nan", np.full(DIM, np.nan))
    with pytest.raises(ValueError, match="expected dimension 256"):
        cache.topk(vec(3, 8), 1)
    assert len(cache) == 0
    assert cache.get("good") is None


# --- storing and reading --------------------------------------------------------------------


def test_vectors_and_metadata_survive_reopening(tmp_path: Path) -> None:
    """What one session puts, the next session gets back from the file, bit for bit."""
    fill(tmp_path, 20)
    with SliceCache.open(tmp_path) as reopened:
        got = reopened.get("k7")
        assert got is not None
        assert np.array_equal(got, vec(7))
        assert not got.flags.writeable
        assert reopened.meta("k7") == META
        assert len(reopened) == 20
        assert reopened.get("absent") is None
        assert reopened.stats["hits"] == 1
        assert reopened.stats["misses"] == 1


def test_putting_without_metadata_keeps_the_stored_metadata(cache: SliceCache) -> None:
    """meta=None updates the vector and leaves the metadata as it was."""
    cache.put("k", vec(1), META)
    cache.put("k", vec(2))
    assert cache.meta("k") == META
    assert np.array_equal(cache.get("k"), vec(2))  # type: ignore[arg-type]
    assert len(cache) == 1


def test_topk_agrees_with_brute_force_cosine(cache: SliceCache) -> None:
    """Top-k is the k best cosine similarities, best first, optionally among given keys."""
    vectors = np.stack([vec(i) for i in range(300)])
    cache.put_many([(f"k{i}", v, None) for i, v in enumerate(vectors)])
    query = vec(1000)
    cosine = vectors @ query / np.linalg.norm(vectors, axis=1) / np.linalg.norm(query)
    best = np.argsort(-cosine)

    top = cache.topk(query, 5)
    assert [key for key, _ in top] == [f"k{i}" for i in best[:5]]
    assert [s for _, s in top] == pytest.approx(list(cosine[best[:5]]), abs=1e-5)

    among = {f"k{i}" for i in range(0, 300, 7)} | {"not-cached"}
    restricted = cache.topk(query, 3, keys=among)
    expected = [i for i in best if i % 7 == 0][:3]
    assert [key for key, _ in restricted] == [f"k{i}" for i in expected]
    assert len(cache.topk(query, 1000)) == 300
    assert cache.topk(np.zeros(DIM), 3) == []


def test_topk_sees_what_another_process_wrote_and_evicted(tmp_path: Path) -> None:
    """The ranking matrix follows other connections' writes and evictions."""
    with (
        SliceCache.open(tmp_path, max_entries=10) as ranker,
        SliceCache.open(tmp_path, max_entries=10) as writer,
    ):
        writer.put_many([(f"k{i}", vec(i), None) for i in range(5)])
        assert len(ranker.topk(vec(0), 100)) == 5
        writer.put("new", vec(99))
        assert ranker.topk(vec(99), 1)[0][0] == "new"
        writer.put_many([(f"m{i}", vec(200 + i), None) for i in range(10)])
        keys = {key for key, _ in ranker.topk(vec(0), 100)}
        assert keys == {f"m{i}" for i in range(10)}


def test_a_files_slices_are_reused_while_its_fingerprint_holds(cache: SliceCache) -> None:
    """file_slices returns the stored slices for the same fingerprint, None otherwise."""
    other = SliceMeta("pkg/sizing.py", "<module>", "module", 1, 2, 0, 39, 8)
    cache.put_file_slices("pkg/sizing.py", "blob-1", [("a", other), ("b", META)])
    assert cache.file_slices("pkg/sizing.py", "blob-1") == [other, META]
    assert cache.file_slice_keys("pkg/sizing.py", "blob-1") == [("a", other), ("b", META)]
    assert cache.file_slices("pkg/sizing.py", "blob-2") is None
    assert cache.file_slices("pkg/other.py", "blob-1") is None
    assert (cache.stats["file_hits"], cache.stats["file_misses"]) == (2, 2)


def test_the_size_bound_evicts_the_least_recently_used(tmp_path: Path) -> None:
    """Over max_entries the oldest-used entries go; a recently read one stays."""
    with SliceCache(tmp_path / FILENAME, max_entries=50, lru_size=0) as bounded:
        for i in range(50):
            bounded.put(f"k{i}", vec(i))
        assert bounded.get("k0") is not None  # used: now the most recent
        bounded.put_many([(f"n{i}", vec(100 + i), None) for i in range(5)])
        assert len(bounded) <= 50
        assert bounded.get("k0") is not None
        assert bounded.get("k1") is None
        assert bounded.stats["evictions"] >= 5
        for i in range(200):
            bounded.put(f"x{i}", vec(i))
        assert len(bounded) <= 50
        assert bounded.get("x199") is not None
    count = sqlite3.connect(tmp_path / FILENAME).execute("SELECT count(*) FROM slice_cache")
    assert count.fetchone()[0] == len(SliceCache(tmp_path / FILENAME))


# --- bad input and recovery -----------------------------------------------------------------


def test_an_old_schema_version_is_dropped_and_rebuilt(tmp_path: Path) -> None:
    """A file from another schema version starts empty, without a warning."""
    fill(tmp_path, 3)
    with sqlite3.connect(tmp_path / FILENAME) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rebuilt = SliceCache.open(tmp_path)
    assert len(rebuilt) == 0
    assert rebuilt.stats["rebuilds"] == 1
    rebuilt.close()


def test_a_cache_of_another_dimension_is_rebuilt(tmp_path: Path) -> None:
    """Opening with a different dim drops the old vectors instead of misreading them."""
    fill(tmp_path, 3)
    with SliceCache.open(tmp_path, dim=64) as small:
        assert len(small) == 0
        small.put("k", vec(1, 64))
        assert small.get("k") is not None


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_corrupt_file_is_rebuilt_with_a_warning(tmp_path: Path, damage: str) -> None:
    """A garbage or truncated file is detected, rebuilt empty with a warning, and usable."""
    fill(tmp_path, 2000)
    path = tmp_path / FILENAME
    if damage == "garbage":
        path.write_bytes(os.urandom(64 * 1024))
    else:
        os.truncate(path, path.stat().st_size // 2)
    with pytest.warns(SliceCacheWarning, match="corrupt") as caught:
        repaired = SliceCache.open(tmp_path)
    assert len(caught) == 1
    assert repaired.path == path
    assert repaired.get("k1") is None
    repaired.put("fresh", vec(1))
    assert repaired.get("fresh") is not None
    assert repaired.stats["rebuilds"] == 1
    repaired.close()


def test_corruption_found_while_running_is_rebuilt_not_raised(tmp_path: Path) -> None:
    """A file that goes bad under an open cache turns a read into a miss, then works again."""
    fill(tmp_path, 2000)
    live = SliceCache(tmp_path / FILENAME, lru_size=0)
    with open(tmp_path / FILENAME, "r+b") as f:
        f.seek(8192)
        f.write(os.urandom(1 << 20))
    with pytest.warns(SliceCacheWarning, match="corrupt"):
        assert [live.get(f"k{i}") for i in range(2000)].count(None) > 0
    live.put("after", vec(1))
    assert live.get("after") is not None
    live.close()


def test_an_unusable_directory_falls_back_to_memory_with_one_warning(tmp_path: Path) -> None:
    """A cache directory that cannot be created gives a working in-memory cache."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.warns(SliceCacheWarning, match="in memory") as caught:
        fallback = SliceCache.open(blocker / "cache")
    assert len(caught) == 1
    assert fallback.path is None
    fallback.put("k", vec(1))
    assert fallback.get("k") is not None
    fallback.close()


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores modes")
def test_a_read_only_directory_falls_back_to_memory_with_one_warning(tmp_path: Path) -> None:
    """A directory the cache may not write gives an in-memory cache and one warning."""
    tmp_path.chmod(0o555)
    try:
        with pytest.warns(SliceCacheWarning, match="in memory") as caught:
            fallback = SliceCache.open(tmp_path)
    finally:
        tmp_path.chmod(0o755)
    assert len(caught) == 1
    assert fallback.path is None


def test_no_directory_means_memory_without_a_warning() -> None:
    """open(None) is an in-memory cache, as asked, silently."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with SliceCache.open(None) as memory:
            memory.put("k", vec(1), META)
            assert memory.meta("k") == META


def test_a_closed_cache_says_so() -> None:
    """Using a closed cache is a programming error with a clear message."""
    closed = SliceCache(None)
    closed.close()
    closed.close()
    with pytest.raises(ValueError, match="closed"):
        closed.get("k")


# --- several processes ----------------------------------------------------------------------

WRITER = """
import sys
import numpy as np
from pytest_orchestrator.phases.map.slice_cache import DIM, SliceCache, SliceMeta

directory, worker, workers, n = sys.argv[1], *map(int, sys.argv[2:])
with SliceCache.open(directory, lru_size=16) as cache:
    for i in range(n):
        value = np.full(DIM, worker * 1_000_000 + i, np.float32)
        if i % 10 == 0:  # every tenth write is a batch of ten
            cache.put_many([(f"{worker}-{i}-{j}", value, None) for j in range(10)])
        else:
            meta = SliceMeta(f"w{worker}.py", f"f{i}", "function", i, i + 1, 0, 1, 1)
            cache.put(f"{worker}-{i}", value, meta)
        if i % 25 == 0:
            cache.get(f"{(worker + 1) % workers}-{i + 1}")
        if i % 250 == 0:
            cache.topk(value, 3)
"""


def test_several_processes_write_at_once_without_losing_a_write(tmp_path: Path) -> None:
    """Four processes, 4000 write transactions (7600 vectors): all there, file intact."""
    workers, n = 4, 1000
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-W",
                "error",
                "-c",
                WRITER,
                str(tmp_path),
                str(w),
                str(workers),
                str(n),
            ],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(workers)
    ]
    errors = [proc.communicate(timeout=300)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * workers, errors

    conn = sqlite3.connect(tmp_path / FILENAME)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    expected = {
        key: w * 1_000_000 + i
        for w in range(workers)
        for i in range(n)
        for key in ([f"{w}-{i}-{j}" for j in range(10)] if i % 10 == 0 else [f"{w}-{i}"])
    }
    rows = dict(conn.execute("SELECT hash, vector FROM slice_cache").fetchall())
    conn.close()
    assert len(rows) == len(expected) == workers * (n // 10 * 10 + n - n // 10)
    assert all(np.frombuffer(rows[k], "<f4")[0] == v for k, v in expected.items())
    with SliceCache.open(tmp_path) as reader:
        assert len(reader) == len(expected)
        assert reader.meta("3-999") == SliceMeta("w3.py", "f999", "function", 999, 1000, 0, 1, 1)


# --- agreement with a model -----------------------------------------------------------------

SMALL: int = 8
KEYS = st.sampled_from([f"k{i}" for i in range(12)])
VECTORS = st.lists(st.integers(-3, 3), min_size=SMALL, max_size=SMALL).map(
    lambda v: np.array(v, np.float32)
)
METAS = st.none() | st.builds(
    SliceMeta,
    path=st.sampled_from(["a.py", "pkg/b.py", "ü/ß.py"]),
    symbol=st.text(max_size=6),
    kind=st.sampled_from(["function", "class"]),
    start_line=st.integers(1, 10**6),
    end_line=st.integers(1, 10**6),
    start_byte=st.integers(0, 2**40),
    end_byte=st.integers(0, 2**40),
    tokens=st.integers(0, 10**6),
)


class CacheAgreesWithADict(RuleBasedStateMachine):
    """The cache behaves like a dict of vectors and a dict of metadata, across reopenings."""

    MAX_ENTRIES = 1_000
    PERSISTENT = True

    def __init__(self) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp()) if self.PERSISTENT else None
        self.cache = self._open()
        self.vectors: dict[str, np.ndarray] = {}
        self.metas: dict[str, SliceMeta] = {}
        self.last_put: str | None = None

    def _open(self) -> SliceCache:
        return SliceCache.open(self.directory, dim=SMALL, max_entries=self.MAX_ENTRIES, lru_size=3)

    @property
    def strict(self) -> bool:
        return self.MAX_ENTRIES >= 12

    def _model_put(self, key: str, vector: np.ndarray, meta: SliceMeta | None) -> None:
        self.vectors[key] = vector
        if meta is not None:
            self.metas[key] = meta
        self.last_put = key

    @rule(key=KEYS, vector=VECTORS, meta=METAS)
    def put(self, key: str, vector: np.ndarray, meta: SliceMeta | None) -> None:
        self.cache.put(key, vector, meta)
        self._model_put(key, vector, meta)

    @rule(items=st.lists(st.tuples(KEYS, VECTORS, METAS), max_size=5))
    def put_many(self, items: list[tuple[str, np.ndarray, SliceMeta | None]]) -> None:
        self.cache.put_many(items)
        for item in items:
            self._model_put(*item)

    @rule(key=KEYS)
    def get(self, key: str) -> None:
        got = self.cache.get(key)
        if got is None and not self.strict:
            self.vectors.pop(key, None)  # evicted: the model forgets it too
            self.metas.pop(key, None)
        elif key in self.vectors:
            assert got is not None
            assert np.array_equal(got, self.vectors[key])
        else:
            assert got is None

    @rule(key=KEYS)
    def meta(self, key: str) -> None:
        got = self.cache.meta(key)
        if self.strict:
            assert got == self.metas.get(key)
        else:  # an evicted key put again without metadata has none
            assert got in (None, self.metas.get(key))

    @precondition(lambda self: self.strict)
    @rule(query=VECTORS, k=st.integers(0, 14))
    def topk(self, query: np.ndarray, k: int) -> None:
        got = self.cache.topk(query, k)
        if not query.any() or k == 0:
            assert got == []
            return
        q = query / np.linalg.norm(query)

        def cosine(v: np.ndarray) -> float:
            norm = np.linalg.norm(v)
            return float(v @ q / norm) if norm else 0.0

        expected = sorted((cosine(v) for v in self.vectors.values()), reverse=True)[:k]
        assert [s for _, s in got] == pytest.approx(expected, abs=1e-5)
        for key, score in got:
            assert score == pytest.approx(cosine(self.vectors[key]), abs=1e-5)

    @rule()
    def reopen(self) -> None:
        if self.PERSISTENT:
            self.cache.close()
            self.cache = self._open()

    @invariant()
    def size(self) -> None:
        if self.strict:
            assert len(self.cache) == len(self.vectors)
        else:
            assert len(self.cache) <= self.MAX_ENTRIES
            if self.last_put is not None:
                assert self.cache.get(self.last_put) is not None

    def teardown(self) -> None:
        self.cache.close()
        if self.directory is not None:
            shutil.rmtree(self.directory)


class MemoryCacheAgreesWithADict(CacheAgreesWithADict):
    PERSISTENT = False


class BoundedCacheAgreesWithADict(CacheAgreesWithADict):
    MAX_ENTRIES = 5


def _test_case(machine: type[RuleBasedStateMachine]) -> type:
    case = machine.TestCase
    case.settings = settings(max_examples=20, stateful_step_count=25, deadline=None)
    return case


TestCacheAgreesWithADict = _test_case(CacheAgreesWithADict)
TestMemoryCacheAgreesWithADict = _test_case(MemoryCacheAgreesWithADict)
TestBoundedCacheAgreesWithADict = _test_case(BoundedCacheAgreesWithADict)


def test_get_many_answers_as_get_does(tmp_path: Path) -> None:
    """One batched lookup finds what `get` finds, key by key, from the file and the LRU, and
    leaves out what is not stored (more keys than one query's bound included)."""
    keys = [f"{n:040x}" for n in range(1200)]
    with SliceCache.open(tmp_path) as writer:
        writer.put_many([(k, embed(f"name_{n} other_{n % 7}"), None) for n, k in enumerate(keys)])
    with SliceCache.open(tmp_path, lru_size=10) as cache:
        cache.get(keys[3])  # one of them in the LRU already
        wanted = [*keys[::2], "f" * 40, keys[3], keys[3]]
        found = cache.get_many(wanted)
        assert set(found) == set(keys[::2]) | {keys[3]}
        for key, vector in found.items():
            stored = cache.get(key)
            assert stored is not None
            assert vector.tobytes() == stored.tobytes()
