"""Phase 1, Map: from a sentence to candidate files and ranked slices, lazily.

The pipeline (`map_repository`), each step bounded so that a 3-million-line repository costs
a few ripgrep passes and the parsing of a few dozen files:

1. extract terms from the command (`pytest_orchestrator.phases.map.terms`);
2. search, all at once: the Python file list, per-file counts of the command's words, and where
   the named identifiers occur and are defined (`pytest_orchestrator.phases.map.search`); a
   clean git tree searched before for the same terms is not searched again
   (`pytest_orchestrator.phases.map.search_cache`);
3. score files from that evidence (`pytest_orchestrator.phases.map.evidence`), add what earlier
   runs chose for similar commands (`pytest_orchestrator.phases.map.memory`), pick the
   candidate files -- for a pasted bug report, by its own file score, which reads stack
   frames, code blocks and error messages first (`pytest_orchestrator.phases.map.report`);
4. widen them by their import-graph neighbourhood (`pytest_orchestrator.phases.map.graph`);
5. slice only the candidates, reusing the slice cache's slices of any file whose git-blob id is
   unchanged (`pytest_orchestrator.phases.map.file_slices`,
   `pytest_orchestrator.phases.map.slicing`);
6. score every slice with named components and explicit weights
   (`pytest_orchestrator.phases.map.rank`).

Nothing is written in the searched tree; the caches and the memory live in the cache dir.
The hook runs `map_cached`: on a clean tree, a command Mapped before is looked up instead
(`pytest_orchestrator.phases.map.result_cache`).
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NamedTuple, TypeVar

import pytest

from pytest_orchestrator.model import MapResult, RankedSlice, Slice
from pytest_orchestrator.phases.map import report as bug_report
from pytest_orchestrator.phases.map import search
from pytest_orchestrator.phases.map.evidence import (
    DEF_FILE_BONUS,
    FileEvidence,
    explicit_files,
    score_files,
)
from pytest_orchestrator.phases.map.file_slices import count, slice_file
from pytest_orchestrator.phases.map.graph import (
    ImportGraph,
    ModuleIndex,
    module_names,
    resolve_imports,
)
from pytest_orchestrator.phases.map.index import SearchIndex, TreeIndex
from pytest_orchestrator.phases.map.memory import Memory
from pytest_orchestrator.phases.map.rank import (
    DEFAULT_WEIGHTS,
    Weights,
    bm25_texts,
    idf,
    normalise,
)
from pytest_orchestrator.phases.map.search_cache import SearchCache, search_key, tree_state
from pytest_orchestrator.phases.map.slicing import SlicedFile, decode
from pytest_orchestrator.phases.map.terms import Terms, extract
from pytest_orchestrator.repo.files import is_test_path

if TYPE_CHECKING:
    from pytest_orchestrator.phases.map.slice_cache import SliceCache, SliceMeta
    from pytest_orchestrator.run import Run

#: Files ranked by ripgrep evidence that are parsed (definitions and explicit paths come on top).
MAX_FILES: Final = 40
#: Import neighbours of the seed files added to the candidates.
MAX_NEIGHBOURS: Final = 20
#: Slices handed to Logic.
MAX_SLICES: Final = 300


@dataclass
class Candidates:
    """Intermediate state of one Map: the scored files and the sliced candidates."""

    terms: Terms
    file_scores: dict[str, float] = field(default_factory=dict)
    evidence: FileEvidence | None = None
    seeds: set[str] = field(default_factory=set)
    sliced: dict[str, SlicedFile] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    found: tuple[str, ...] = ()
    """The command's identifiers that occur somewhere in the repository."""
    found_names: tuple[str, ...] = ()
    """The command's capitalised prose words that occur as identifiers in the repository."""
    idfs: dict[str, float] | None = None
    """Each query word's IDF over the repository's files (from ripgrep's counts)."""
    stats: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    report: dict[str, float] = field(default_factory=dict)
    """Each file's bug-report score, normalised (empty unless the command is a report)."""


def _vector_scores(
    command: str, slices: list[Slice], texts: dict[str, str], cache: SliceCache | None
) -> dict[str, float]:
    """Cosine similarity of the command and each slice (hashed identifier embeddings).

    Vectors come from the slice cache when it has them (looked up by key, all at once:
    cheaper than loading the cache's whole matrix for `SliceCache.topk`); the rest are
    embedded here.
    """
    import numpy as np

    from pytest_orchestrator.phases.map.slice_cache import embed

    query = embed(command)
    out: dict[str, float] = {}
    fresh: list[tuple[str, Any, SliceMeta | None]] = []
    stored = cache.get_many(s.hash for s in slices) if cache is not None else {}
    for s in slices:
        if s.hash in out:
            continue
        vector = stored.get(s.hash)
        if vector is None:
            vector = embed(texts[_sid(s)])
            fresh.append((s.hash, vector, None))
        out[s.hash] = float(np.dot(vector, query))
    if cache is not None and fresh:
        cache.put_many(fresh)
    return out


def _sid(s: Slice) -> str:
    return f"{s.path}::{s.symbol}:{s.start_line}"


def _defines(s: Slice, text: str, identifiers: tuple[str, ...]) -> bool:
    name = s.symbol.rsplit(".", 1)[-1]
    if name in identifiers:
        return True
    if s.kind in ("module", "class"):
        return any(
            i in text and re.search(rf"^\s*{re.escape(i)}\s*(?::[^=\n]*)?=[^=]", text, re.M)
            for i in identifiers
        )
    return False


class Ranking(NamedTuple):
    """`rank_slices`' answer: the best slices, and every candidate file in rank order."""

    slices: list[RankedSlice]
    """The ``limit`` best slices, best first."""
    files: list[str]
    """Every file with a candidate slice, by its best slice (Map's file order)."""
    candidates: int
    """How many slices were scored."""


def rank_slices(
    cands: Candidates,
    command: str,
    *,
    graph_dist: dict[str, int],
    centrality: dict[str, float],
    memory: dict[tuple[str, str], float],
    cache: SliceCache | None,
    weights: Weights = DEFAULT_WEIGHTS,
    vector_top: int = 2 * MAX_SLICES,
    limit: int | None = None,
) -> Ranking:
    """Score every candidate slice; best first (only the ``limit`` best are built)."""
    terms = cands.terms
    slices = [s for f in cands.sliced.values() for s in f.slices]
    if not slices:
        return Ranking([], [], 0)
    sids = [_sid(s) for s in slices]
    texts = [cands.texts[sid] for sid in sids]
    idfs = cands.idfs if cands.idfs is not None else {w: 1.0 for w in terms.words}
    scores = bm25_texts(texts, list(terms.words), idfs)
    lexical = normalise(dict(zip(sids, scores, strict=True)))
    ev = cands.evidence or FileEvidence()
    file_text = normalise(ev.text)
    file_path = normalise(ev.path)
    # identifiers found nowhere (prose mistaken for a name, a typo) must not dilute the rest
    ident_res = [(i, re.compile(rf"\b{re.escape(i)}\b")) for i in cands.found]
    paths = list(cands.sliced)
    trace_files = {
        p: explicit_files(Terms(paths=(p,)), paths, ModuleIndex()) for p, _ in terms.trace
    }
    tests = {p: 1.0 if is_test_path(p) else 0.0 for p in paths}
    comps: list[dict[str, float]] = []
    for s, sid, text in zip(slices, sids, texts, strict=True):
        comp: dict[str, float] = {
            "definition": 1.0 if _defines(s, text, cands.found) else 0.0,
            "name": 1.0 if _defines(s, text, cands.found_names) else 0.0,
            "identifier": (
                sum(1 for i, r in ident_res if i in text and r.search(text)) / len(ident_res)
                if ident_res
                else 0.0
            ),
            "lexical": lexical.get(sid, 0.0),
            "file": file_text.get(s.path, 0.0),
            "path": file_path.get(s.path, 0.0),
            "graph": 1.0 / (1 + graph_dist[s.path]) if s.path in graph_dist else 0.0,
            "centrality": centrality.get(s.path, 0.0),
            "vector": 0.0,
            "memory": memory.get((s.path, s.symbol), 0.0),
            "report": cands.report.get(s.path, 0.0),
            "test": tests[s.path],
            "trace": (
                1.0
                if terms.trace
                and any(
                    s.path in trace_files.get(p, ()) and s.start_line <= line <= s.end_line
                    for p, line in terms.trace
                )
                else 0.0
            ),
        }
        comps.append(comp)
    # Embedding is the costliest component: only the slices that can still reach the top
    # (by every other component) get one; the rest keep vector = 0.
    score = _scorer(weights, list(comps[0]))
    partial = sorted(range(len(slices)), key=lambda i: -score(comps[i]))[:vector_top]
    vectors = _vector_scores(command, [slices[i] for i in partial], cands.texts, cache)
    final: list[float] = []
    for i, s in enumerate(slices):
        comp = comps[i]
        comp["vector"] = max(0.0, vectors.get(s.hash, 0.0))
        comps[i] = comp = {k: v if v in (0.0, 1.0) else round(v, 4) for k, v in comp.items()}
        final.append(round(score(comp), 4))
    order = sorted(
        range(len(slices)), key=lambda i: (-final[i], slices[i].path, slices[i].start_line)
    )
    files = list(dict.fromkeys(slices[i].path for i in order))
    # built from trusted values: validating ~10k rows was a tenth of a new command's Map
    ranked = [
        RankedSlice.model_construct(slice=slices[i], score=final[i], components=comps[i])
        for i in order[:limit]
    ]
    return Ranking(ranked, files, len(slices))


def _scorer(weights: Weights, names: list[str]) -> Callable[[dict[str, float]], float]:
    """``weights.score`` for component dicts whose keys are ``names``, in that order: the same
    products summed in the same order, without a ``getattr`` per component and slice."""
    factors = [getattr(weights, name, 0.0) for name in names]

    def score(components: dict[str, float]) -> float:
        return sum([f * v for f, v in zip(factors, components.values(), strict=True)])

    return score


T = TypeVar("T")
_STATS_LOCK: Final = threading.Lock()


def _cached(
    searches: SearchCache | None,
    state: str | None,
    what: tuple[object, ...],
    run: Callable[[], T],
    dump: Callable[[T], Any],
    load: Callable[[Any], T],
    stats: dict[str, float],
) -> T:
    """``run()``, or its stored result for this tree (see
    `pytest_orchestrator.phases.map.search_cache`)."""
    if searches is None or state is None:
        return run()
    key = search_key(state, *what)
    stored = searches.get(key)
    if stored is not None:
        with _STATS_LOCK:  # called from the search threads
            stats["cached_searches"] = stats.get("cached_searches", 0) + 1
        return load(stored)
    result = run()
    searches.put(key, dump(result))
    return result


def _either(indexed: Callable[[], T | None], searched: Callable[[], T]) -> T:
    """The index's answer when it has one, else ripgrep's."""
    answer = indexed()
    return searched() if answer is None else answer


def _search(
    root: Path,
    terms: Terms,
    searches: SearchCache | None,
    stats: dict[str, float],
    index: SearchIndex | None = None,
    tree_id: str | None = None,
) -> tuple[search.Hits, search.IdentifierHits, list[str], str | None, TreeIndex | None]:
    """The file list, the word counts and the identifier pass, at once (ripgrep and git do
    the work in their own processes; the threads only wait and parse), each taken from the
    search cache when this exact tree was searched for these terms before, else from the
    identifier index when it holds the tree, else from ripgrep. ``tree_id``: the tree the
    caller knows ``root`` holds (then no ``git status`` is run to find it)."""
    names = (*terms.identifiers, *terms.names)
    with ThreadPoolExecutor(max_workers=3) as pool:
        files_job = pool.submit(search.list_files, root)
        cached = searches is not None or index is not None
        state = tree_id if tree_id is not None else tree_state(root) if cached else None
        indexed = index.tree(root, state) if index is not None and state is not None else None
        stats["index"] = 1.0 if indexed is not None else 0.0
        if terms.empty:
            return search.Hits(), search.IdentifierHits(), files_job.result(), state, indexed
        hits_job = pool.submit(
            _cached,
            searches,
            state,
            ("words", sorted(terms.words), sorted(terms.identifiers), sorted(terms.phrases)),
            lambda: _either(
                lambda: (
                    indexed.count_terms(terms.words, terms.identifiers, terms.phrases)
                    if indexed
                    else None
                ),
                lambda: search.count_terms(root, terms.words, terms.identifiers, terms.phrases),
            ),
            search.Hits.to_json,
            search.Hits.from_json,
            stats,
        )
        idents_job = pool.submit(
            _cached,
            searches,
            state,
            ("identifiers", sorted(names)),
            lambda: _either(
                lambda: indexed.find_identifiers(names) if indexed else None,
                lambda: search.find_identifiers(root, names),
            ),
            search.IdentifierHits.to_json,
            search.IdentifierHits.from_json,
            stats,
        )
        files = files_job.result()
        hits, idents = hits_job.result(), idents_job.result()
    stats["files_matched"] = len(hits.files | set(idents.counts))
    return hits, idents, files, state, indexed


def map_repository(
    root: Path,
    command: str,
    *,
    cache: SliceCache | None = None,
    memory: Memory | None = None,
    searches: SearchCache | None = None,
    blob_index: SearchIndex | None = None,
    build_index: Callable[[str], None] | None = None,
    weights: Weights = DEFAULT_WEIGHTS,
    max_files: int = MAX_FILES,
    max_slices: int = MAX_SLICES,
    report: Callable[[str], None] | None = None,
    tree_id: str | None = None,
) -> MapResult:
    """Map ``command`` onto the Python code under ``root`` (read-only). See the module doc.

    ``blob_index``: the identifier index to search when it holds the tree; when it does not,
    ``build_index(tree id)`` is called once the searches are done (to index it aside).
    ``tree_id``: the git tree id of exactly what ``root`` holds (untracked files included),
    when the caller knows it: the caches are keyed on it instead of on what ``git status``
    and ``rev-parse`` say (one process less, ~0.15 s on a 4-million-line tree); None: Map
    asks git (`search_cache.tree_state`), and a dirty tree is not cached."""
    t0 = time.perf_counter()
    terms = extract(command)
    report_ = bug_report.parse(command)
    if report_.is_report:
        terms = bug_report.widen(terms, report_)
        if weights is DEFAULT_WEIGHTS:
            weights = bug_report.REPORT_WEIGHTS
    stats: dict[str, float] = {}
    cands = Candidates(terms=terms, stats=stats)
    hits, idents, files, state, indexed = _search(root, terms, searches, stats, blob_index, tree_id)
    if indexed is None and state is not None and build_index is not None:
        build_index(state)
    stats["files_searched"] = len(files)
    if terms.empty:
        return MapResult(terms=[], files=[], slices=[], stats=stats)
    defs = idents.definitions
    stats["seconds_search"] = round(time.perf_counter() - t0, 4)

    index = ModuleIndex.build(files)
    remembered = memory.recall(command) if memory is not None else {}
    cands.evidence = score_files(root, terms, files, hits, idents)
    scores = cands.evidence.total
    seen = {i for c in idents.counts.values() for i in c}
    cands.found = tuple(i for i in terms.identifiers if i in seen)
    cands.found_names = tuple(i for i in terms.names if i in seen)
    df = hits.document_frequency()
    cands.idfs = {w: idf(max(len(files), 1), df.get(w, 0)) for w in terms.words}
    known = set(files)
    explicit = explicit_files(terms, files, index)
    recalled = {p for p, _ in remembered if p in known}
    for path in explicit:
        scores[path] = scores.get(path, 0.0) + DEF_FILE_BONUS
    cands.file_scores = scores
    ranked_files = sorted(scores, key=lambda p: (-scores[p], p))
    if report_.is_report:
        cands.report = _report(report_, cands, files, index, hits, idents, stats)
        # a report's candidates are its best-scored files first, wide enough that the
        # fixed file is nearly always among them
        ranked_files = sorted(cands.report, key=lambda p: (-cands.report[p], p))
        top = set(ranked_files[:max_files])
        explicit &= top
    # files defining a named identifier are seeds (best first: a common name can have many)
    defining = sorted(
        {p for name, paths in defs.items() if name in cands.found for p in paths},
        key=lambda p: (-scores.get(p, 0.0), p),
    )[: max_files // 2]
    if report_.is_report:
        defining = [p for p in defining if p in top]
    cands.seeds = set(defining) | explicit
    if not cands.seeds:
        cands.seeds = set(ranked_files[:3])
    chosen = list(dict.fromkeys([*sorted(explicit), *defining, *sorted(recalled)]))
    chosen += [p for p in ranked_files[: max_files * 2] if p not in chosen][
        : max(0, max_files - len(chosen))
    ]

    # read and slice the candidates, collecting their imports for the neighbourhood
    graph = ImportGraph()
    raws: dict[str, bytes] = {}

    def take(path: str) -> bool:
        got = slice_file(root, path, cache, stats)
        if got is None:
            return False
        sliced, raw = got
        if sliced.skipped is not None:
            count(stats, f"skipped_{sliced.skipped.replace(' ', '_')}")
            return False
        cands.sliced[path] = sliced
        raws[path] = raw
        for s, (a, b) in zip(sliced.slices, sliced.byte_ranges, strict=True):
            cands.texts[_sid(s)] = decode(raw[a:b])
        if sliced.problems:
            count(stats, "files_with_syntax_errors")
            cands.problems += [f"{path}: {p}" for p in sliced.problems]
        graph.add(path, resolve_imports(decode(raw), path, index))
        return True

    for path in chosen:
        take(path)
    # neighbourhood: what the seeds import, and who imports the seeds (one ripgrep pass)
    neighbours: list[str] = []
    for seed in sorted(cands.seeds & set(cands.sliced)):
        neighbours += sorted(graph.imports.get(seed, set()))
    leaves = {module_names(s)[-1] for s in cands.seeds if module_names(s)}
    import_lines = _cached(
        searches,
        state,
        ("imports", sorted(leaves)),
        lambda: _either(
            lambda: indexed.find_import_lines(leaves) if indexed else None,
            lambda: search.find_import_lines(root, leaves),
        ),
        lambda found: found,
        lambda data: {str(k): list(v) for k, v in data.items()},
        stats,
    )
    for path, lines in sorted(import_lines.items()):
        targets = resolve_imports("\n".join(lines), path, index)
        if targets & cands.seeds:
            neighbours.append(path)
            graph.add(path, targets)
    neighbours = [p for p in dict.fromkeys(neighbours) if p not in cands.sliced]
    neighbours.sort(key=lambda p: -scores.get(p, 0.0))
    for path in neighbours[:MAX_NEIGHBOURS]:
        take(path)
    stats["candidate_files"] = len(cands.sliced)
    stats["seconds_slice"] = round(time.perf_counter() - t0, 4)

    in_deg = graph.in_degree()
    centrality = normalise({p: float(in_deg.get(p, 0)) for p in cands.sliced})
    dist = graph.distances(cands.seeds & set(cands.sliced) or set(ranked_files[:3]))
    ranked, ranked_paths, scored = rank_slices(
        cands,
        command,
        graph_dist=dist,
        centrality=centrality,
        memory=remembered,
        cache=cache,
        weights=weights,
        limit=max_slices,
    )
    stats["candidate_slices"] = scored
    stats["syntax_errors"] = len(cands.problems)
    missing = [i for i in terms.identifiers if i not in seen]
    stats["missing_identifiers"] = len(missing)
    if report is not None:
        for problem in cands.problems[:10]:
            report(f"map: could not parse {problem}")
        if missing and ranked:
            near = indexed.nearby_names(missing) if indexed else search.nearby_names(root, missing)
            hint = f"; nearest names: {', '.join(near)}" if near else ""
            report(f"map: not found anywhere: {', '.join(missing)}{hint}")
    stats["seconds"] = round(time.perf_counter() - t0, 4)
    return MapResult(terms=terms.all(), files=ranked_paths, slices=ranked, stats=stats)


def _report(
    report: bug_report.Report,
    cands: Candidates,
    files: list[str],
    index: ModuleIndex,
    hits: search.Hits,
    idents: search.IdentifierHits,
    stats: dict[str, float],
) -> dict[str, float]:
    """Each file's bug-report score (`pytest_orchestrator.phases.map.report`), normalised."""
    terms = cands.terms
    ev = cands.evidence or FileEvidence()
    frame_files = [explicit_files(Terms(paths=(f.path,)), files, index) for f in report.frames]
    frame_paths = {f.path for f in report.frames}
    named = explicit_files(
        Terms(paths=tuple(p for p in terms.paths if p not in frame_paths)), files, index
    )
    for module in terms.modules:
        # ``pkg.mod`` or ``pkg.mod.func`` names a module; a lone ``pkg`` (or ``tox.ini``
        # read as one) names only the package's __init__, which says little
        parts = module.split(".")
        for i in range(len(parts), 1, -1):
            target = index.resolve(".".join(parts[:i]), "")
            if target is not None:
                named.add(target)
                break
    scored = bug_report.report_scores(report, terms, ev, idents, hits, frame_files, named, files)
    stats["report_frames"] = len(report.frames)
    stats["report_frames_in_repo"] = sum(1 for f in frame_files if f)
    stats["report_api_names"] = len(report.api_names)
    stats["report_messages"] = len(report.messages)
    return normalise(scored)


def _build_aside(root: Path, tree: str, cache_dir: Path) -> None:
    """Index ``tree`` in a process of its own while the session goes on; registered with the
    run's containment, so the session's cleanup stops it (the next build continues it)."""
    from pytest_orchestrator.guard import containment
    from pytest_orchestrator.phases.map.index import start_build

    try:
        proc = start_build(root, tree, cache_dir)
    except OSError:
        return
    group = containment.register(proc)

    def reap() -> None:
        proc.wait()
        containment.release(group)

    threading.Thread(target=reap, name="index-build", daemon=True).start()


def nearest_matches(root: Path, command: str, limit: int = 5) -> list[str]:
    """Names in the repository closest to the command's terms, for "nothing found"."""
    terms = extract(command)
    wanted = [*terms.identifiers, *terms.words]
    return search.nearby_names(root, wanted, limit=limit)


def map_cached(
    root: Path,
    command: str,
    cache_dir: Path,
    *,
    cache: SliceCache | None = None,
    tree_id: str | None = None,
    fresh: bool = False,
    build_index: bool = False,
    report: Callable[[str], None] | None = None,
) -> tuple[MapResult, str | None]:
    """`map_repository` with every cache of ``cache_dir`` (memory, search cache, identifier
    index, and the result cache: a command Mapped before on this clean tree is looked up,
    `pytest_orchestrator.phases.map.result_cache`), and the tree id it was keyed on (None:
    a dirty tree, nothing cached). ``tree_id``: the tree ``root`` holds, when the caller
    knows it; ``fresh``: read no earlier result (store this one); ``build_index``: start the
    identifier index's build aside when the tree is not indexed."""
    from pytest_orchestrator.phases.map.result_cache import ResultCache, map_key

    memory: Memory | None
    try:
        memory = Memory.open(cache_dir)
    except (OSError, sqlite3.Error):  # memory is optional: a locked or unwritable dir: none
        memory = None
    state = tree_id if tree_id is not None else tree_state(root)
    results = ResultCache(cache_dir) if state is not None else None
    try:
        key = None
        if results is not None and state is not None:
            recalled = memory.recall(command) if memory is not None else {}
            key = map_key(state, command, recalled)
            stored = None if fresh else results.get_map(key)
            if stored is not None:
                result, replayed = stored
                if report is not None:
                    for line in replayed:
                        report(line)
                if build_index and not result.stats.get("index"):
                    built = SearchIndex.open(cache_dir)
                    try:
                        if not built.has(state):
                            _build_aside(root, state, cache_dir)
                    finally:
                        built.close()
                stats = {**result.stats, "cached_result": 1.0}
                return result.model_copy(update={"stats": stats}), state
        lines: list[str] = []
        searches = SearchCache.open(cache_dir) if state is not None else None
        index = SearchIndex.open(cache_dir) if state is not None else None
        try:
            result = map_repository(
                root,
                command,
                cache=cache,
                memory=memory,
                # a dirty tree: no cache applies, and no second `git status` is asked
                searches=searches,
                blob_index=index,
                build_index=(lambda tree: _build_aside(root, tree, cache_dir))
                if build_index
                else None,
                report=lines.append,
                tree_id=state,
            )
        finally:
            if searches is not None:
                searches.close()
            if index is not None:
                index.close()
        if report is not None:
            for line in lines:
                report(line)
        if results is not None and key is not None:
            results.put_map(key, result, lines)
        return result, state
    finally:
        if results is not None:
            results.close()
        if memory is not None:
            memory.close()


@pytest.hookimpl(trylast=True)
def pytest_orchestrator_map(run: Run) -> MapResult:
    """The default Map: `map_cached` over the run's worktree, with the caches of
    ``run.settings.cache_dir`` (starting the identifier index's build aside when the tree is
    not indexed yet, unless it is a dry run, which starts no Python process), keyed on
    ``run.base_tree`` when the session knows the worktree's tree."""
    result, _ = map_cached(
        run.worktree,
        run.command,
        run.settings.cache_dir,
        cache=run.cache,
        tree_id=run.base_tree,
        fresh=run.settings.fresh,
        build_index=not run.settings.dry_run,
        report=run.report,
    )
    if not result.slices:
        near = nearest_matches(run.worktree, run.command)
        hint = f"; nearest names: {', '.join(near)}" if near else ""
        run.report(f"map: nothing in the repository matches {result.terms or run.command!r}{hint}")
    return result
