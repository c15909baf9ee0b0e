"""Time Map + Logic on the benchmark corpus: cold and warm wall/CPU medians and peak RSS.

Every measurement runs in a fresh child process (so peak RSS is that run's, ripgrep
included) and times only Map + Logic, not interpreter start-up or imports (those are the
session's, paid once per ``pytest`` run; the child reports them separately).

- cold: a fresh, empty cache directory (slice cache, search cache, memory) per run;
- warm: the cache directory of one earlier run of the same command: the corpus being a
  clean git tree, Map's and Logic's results are looked up (the result cache), nothing is
  searched, parsed or ranked;
- warm-new: what a *new* command on the unchanged corpus costs: a copy of a cache directory
  holding only what the index build leaves (built once beforehand by the build process's own
  code, `index.build`, timed with its peak RSS: the identifier index, then every file's
  slices), so the command was never run there: its searches come from the index, its files'
  slices from the build, its slices' vectors are computed;
- new+tree: warm-new as the session runs it: Map is given the tree id the session already
  knows (`Run.base_tree`, ``map_repository(tree_id=...)``), so it runs no ``git status``
  (the other columns pay for that status, as a standalone call must);
- rg: a new command with ripgrep instead of the index: the warm cache directory with its
  search cache and index removed (the slices of this command's files are cached), each run
  interleaved with a warm-new one, so both see the same load.

Before measuring, the corpus's git index is refreshed once (a plain ``git status``, as any
git command of the user's does): in a fresh clone it is "racy" (never refreshed since the
checkout wrote the files), and Map's read-only ``git status --no-optional-locks`` would
re-hash every file on every run (~0.5 s instead of ~0.15 s), a cost no user's checkout pays.
Each table is printed between two lines of ``benchmarks/reference.py`` (a fixed loop's CPU
seconds: how fast the shared host was at the time).

The OS page cache is warm in both (dropping it needs root): a first-ever search of the corpus
on a cold disk costs more (ripgrep ~1.6 s instead of ~0.2 s on this machine).

With ``--pytest`` it times the real command instead, as a whole process
(``python -m pytest --orchestrate "COMMAND" --orchestrate-dry-run``: start-up, the checkout
snapshot, Map, Logic, Plan) in a clone of the corpus, with its own cache directory: cold (an
empty cache; a dry run does not start the index build), then, once the index is built
(timed: ``python -m pytest_orchestrator.phases.map.index``, the process a full run starts),
warm-new (each command for the first time) and warm (the same command again). Wall and CPU
seconds of the process tree, the largest RSS of any of its processes, Map's own seconds from
the run's ``run.json``, and the 1-minute load average before each run (on a shared machine
wall time follows the load; CPU is the steadier figure). ``PYTHONDONTWRITEBYTECODE`` is
passed on as set (shown in the header); ``--pytest-arg`` adds arguments to every run (e.g.
``-p no:hypothesispytest``: the hypothesis plugin of a dev environment imports hypothesis
at every session's end).

Usage::

    python benchmarks/build_corpus.py          # once
    python benchmarks/bench_map.py [--corpus DIR] [--runs 5]
    python benchmarks/bench_map.py --pytest [--corpus DIR] [--commands N] [--pytest-arg=ARG ...]
        [--python VENV/bin/python]   # the whole process in that virtualenv (its own floor row)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from reference import line as reference_line  # noqa: E402

COMMANDS = [
    "Rename sympify to to_sympy everywhere",
    "QueuePool raises TimeoutError too early when pool_timeout is set",
    "shortest_path should raise NodeNotFound when the source node is missing",
    "minimize ignores the tol argument for the Nelder-Mead method",
    'Traceback (most recent call last):\n  File "/venv/lib/python3.11/site-packages/flask/app.py",'
    " line 1511, in wsgi_app\n    response = self.full_dispatch_request()\nKeyError: 'session'",
    "callLater with a negative delay should fire immediately in the reactor",
]


def child(
    corpus: Path, cache_dir: Path, command: str, tree_id: str | None = None
) -> dict[str, object]:
    """One Map + Logic run as the session's hooks make it (`map_cached`, `prune_cached`),
    measured in this process (``tree_id``: given to Map, as the session gives it the tree it
    knows; else Map asks git, and Logic is keyed on Map's answer)."""
    t_import = time.perf_counter()
    from pytest_orchestrator.phases.logic.phase import prune_cached
    from pytest_orchestrator.phases.map.phase import map_cached
    from pytest_orchestrator.phases.map.slice_cache import SliceCache

    imports = time.perf_counter() - t_import
    self0 = resource.getrusage(resource.RUSAGE_SELF)
    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    cache = SliceCache.open(cache_dir)
    mapped, state = map_cached(corpus, command, cache_dir, cache=cache, tree_id=tree_id)
    logic = prune_cached(mapped, corpus, cache_dir, budget_tokens=4000, tree_id=state)
    cache.close()
    wall = time.perf_counter() - t0
    self1 = resource.getrusage(resource.RUSAGE_SELF)
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = sum(
        getattr(b, f) - getattr(a, f)
        for a, b in ((self0, self1), (kids0, kids1))
        for f in ("ru_utime", "ru_stime")
    )
    top = logic.kept[0].slice if logic.kept else None
    return {
        "wall": wall,
        "cpu": cpu,
        "imports": imports,
        "rss_mb": max(self1.ru_maxrss, kids1.ru_maxrss) / 1024,
        "parsed": mapped.stats.get("parsed_files", 0),
        "cached": mapped.stats.get("cached_files", 0),
        "cached_searches": mapped.stats.get("cached_searches", 0),
        "index": mapped.stats.get("index", 0),
        "cached_result": mapped.stats.get("cached_result", 0),
        "files_searched": mapped.stats.get("files_searched", 0),
        "top": f"{top.path}::{top.symbol}" if top else "-",
    }


def _cpu() -> float:
    """CPU seconds of this process and its waited-for children so far."""
    return sum(
        float(getattr(r, f))
        for r in (resource.getrusage(resource.RUSAGE_SELF),
                  resource.getrusage(resource.RUSAGE_CHILDREN))
        for f in ("ru_utime", "ru_stime")
    )  # fmt: skip


def build(corpus: Path, cache_dir: Path) -> dict[str, object]:
    """What the index build process does (`index.build`), measured in this process: the
    identifier index, then the slices of every file, timed apart."""
    from pytest_orchestrator.phases.map import index as index_mod
    from pytest_orchestrator.phases.map.file_slices import preslice
    from pytest_orchestrator.phases.map.search_cache import tree_state
    from pytest_orchestrator.phases.map.slice_cache import SliceCache

    cpu0, t0 = _cpu(), time.perf_counter()
    tree = tree_state(corpus)
    assert tree is not None, "the corpus must be a clean git tree"
    index = index_mod.SearchIndex.open(cache_dir)
    ok = index.update(corpus, tree)
    index.close()
    cpu1, t1 = _cpu(), time.perf_counter()
    files, gdir = index_mod.searchable(corpus, tree), index_mod.git_dir(corpus)
    assert files is not None
    assert gdir is not None
    with SliceCache.open(cache_dir) as cache:
        sliced = preslice(files, lambda oids: index_mod.read_blobs(gdir, oids), cache)
    cpu2, t2 = _cpu(), time.perf_counter()
    usage = (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    return {
        "ok": ok,
        "wall": t1 - t0,
        "cpu": cpu1 - cpu0,
        "slice_wall": t2 - t1,
        "slice_cpu": cpu2 - cpu1,
        "sliced": sliced,
        "rss_mb": max(u.ru_maxrss for u in usage) / 1024,
        "size_mb": sum(p.stat().st_size for p in cache_dir.glob("index.sqlite*")) / 2**20,
        "slices_mb": sum(p.stat().st_size for p in cache_dir.glob("slices.sqlite3*")) / 2**20,
    }


def measure(
    corpus: Path, cache_dir: Path, command: str | None, tree_id: str | None = None
) -> dict[str, object]:
    """One child run: Map + Logic for ``command``, or (None) the index build."""
    what = ["--build-index"] if command is None else [command]
    if tree_id is not None:
        what = ["--tree-id", tree_id, *what]
    proc = subprocess.run(
        [sys.executable, __file__, "--child", str(cache_dir), "--corpus", str(corpus), *what],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def orchestrate(
    repo: Path, cache_dir: Path, command: str, extra: list[str], python: str = sys.executable
) -> dict[str, float]:
    """One ``pytest --orchestrate COMMAND --orchestrate-dry-run`` in ``repo`` with the
    interpreter ``python`` (a virtualenv's), measured."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "ANTHROPIC"))}
    cmd = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra]
    cmd += ["-o", f"orchestrate_cache_dir={cache_dir}", "--orchestrate", command]
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([*cmd, "--orchestrate-dry-run"], cwd=repo, env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    runs = repo / ".orchestrate" / "runs"
    record = json.loads(
        (max(runs.iterdir(), key=lambda p: p.stat().st_mtime) / "run.json").read_text()
    )
    phases = {p["phase"]: p["seconds"] for p in record["phases"]}
    # exit 4 after Logic: the rules planner refuses a command only an LLM can plan (none
    # here); Map and Logic ran, which is what is timed
    if proc.returncode not in (0, 4) or "map" not in phases or "logic" not in phases:
        shutil.rmtree(repo.parent, ignore_errors=True)
        raise SystemExit(f"pytest failed ({proc.returncode}):\n{proc.stdout[-2000:]}")
    return {
        "wall": wall,
        "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "rss_mb": after.ru_maxrss / 1024,
        "map": float(phases["map"]),
        "phases": float(sum(phases.values())),
        "load": load,
        "refused": float(proc.returncode == 4),
    }


def whole_process(
    corpus: Path, commands: list[str], extra: list[str], python: str = sys.executable
) -> None:
    """The ``--pytest`` mode (see the module doc), with the interpreter ``python`` (that of
    the virtualenv to measure), beside two rows to read it by: the speed reference, and
    pytest's own start in that environment without our plugin (the floor)."""

    def pytest_floor(extra: list[str], runs: int = 3) -> dict[str, float]:
        """pytest's own start and end in this environment, with every installed plugin but ours:
        ``python -m pytest --co -q -p no:cacheprovider -p no:pytest_orchestrator`` in an empty
        directory (the median of ``runs``, by CPU). No dry run can cost less than this."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "ANTHROPIC"))}
        cmd = [python, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider", *extra]
        found = []
        with tempfile.TemporaryDirectory(prefix="bench-map-floor-") as empty:
            for _ in range(runs):
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                start = time.perf_counter()
                subprocess.run([*cmd, "-p", "no:pytest_orchestrator", empty], cwd=empty, env=env,
                               capture_output=True, check=False)  # fmt: skip
                wall = time.perf_counter() - start
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
                found.append({"wall": wall, "cpu": cpu})
        return sorted(found, key=lambda r: r["cpu"])[len(found) // 2]

    work = Path(tempfile.mkdtemp(prefix="bench-map-pytest-"))
    repo, cache_dir = work / "corpus", work / "cache"
    subprocess.run(["git", "clone", "-q", "--shared", str(corpus), str(repo)], check=True)
    # A fresh clone's index is "racy" (every entry as new as the index file), so every read-only
    # `git status` (the run's, which never writes the index) re-reads all 60,000 files: ~0.6 s
    # instead of ~0.15. The user's own first git command refreshes it; so does this one.
    subprocess.run(["git", "-C", str(repo), "status", "-s"], capture_output=True, check=True)
    bytecode = os.environ.get("PYTHONDONTWRITEBYTECODE")
    print(f"{python} -m pytest -q -p no:cacheprovider {' '.join(extra)} --orchestrate CMD"
          f" --orchestrate-dry-run, in a clone of {corpus} (its index refreshed by one `git"
          f" status`); PYTHONDONTWRITEBYTECODE={bytecode or '(unset)'};"
          f" {os.cpu_count()} cores")  # fmt: skip
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(reference_line())
    floor = pytest_floor(extra)
    print(f"pytest's own start in this environment (--co -q -p no:cacheprovider"
          f" -p no:pytest_orchestrator {' '.join(extra)}, an empty directory, median of 3):"
          f" {floor['wall']:.2f}s wall, {floor['cpu']:.2f}s CPU")  # fmt: skip
    print("wall/cpu: the whole process tree; phases: Map+Logic+Plan (run.json; only the rename"
          " is planned, the rules planner refuses the others after Logic, exit 4: 'refused');"
          " load: 1-min load average before the run")  # fmt: skip
    header = (f"{'command':<44} {'run':<9} {'wall':>6} {'cpu':>6} {'Map':>6} {'phases':>6}"
              f" {'max RSS':>8} {'load':>5}")  # fmt: skip
    print(header)
    print("-" * len(header))

    def show(command: str, name: str, r: dict[str, float]) -> None:
        label = command.replace("\n", " ")[:43]
        print(f"{label:<44} {name:<9} {r['wall']:>5.2f}s {r['cpu']:>5.2f}s {r['map']:>5.2f}s"
              f" {r['phases']:>5.2f}s {r['rss_mb']:>6.0f}MB {r['load']:>5.1f}"
              f"{'  refused' if r['refused'] else ''}")  # fmt: skip

    colds: list[dict[str, float]] = []
    for command in commands:
        shutil.rmtree(cache_dir, ignore_errors=True)
        colds.append(orchestrate(repo, cache_dir, command, extra, python))
        show(command, "cold", colds[-1])
    tree = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD^{tree}"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([python, "-m", "pytest_orchestrator.phases.map.index",
                    str(repo), tree, str(cache_dir)], check=True)  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"index build (index, then every file's slices; nice 10): "
          f"{time.perf_counter() - start:.1f}s wall,"
          f" {after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime:.1f}s CPU,"
          f" max RSS {after.ru_maxrss / 1024:.0f} MB")  # fmt: skip
    news, warms = [], []
    for command in commands:
        news.append(orchestrate(repo, cache_dir, command, extra, python))
        show(command, "warm-new", news[-1])
        warms.append(orchestrate(repo, cache_dir, command, extra, python))
        show(command, "warm", warms[-1])
    print("-" * len(header))
    for name, rs in (("cold", colds), ("warm-new", news), ("warm", warms)):
        print(f"{name:<9} median wall {statistics.median(r['wall'] for r in rs):.2f}s"
              f" (worst {max(r['wall'] for r in rs):.2f}s),"
              f" CPU {statistics.median(r['cpu'] for r in rs):.2f}s"
              f" (worst {max(r['cpu'] for r in rs):.2f}s),"
              f" Map {statistics.median(r['map'] for r in rs):.2f}s"
              f" (worst {max(r['map'] for r in rs):.2f}s)")  # fmt: skip
    print(f"beyond pytest's own start: warm median CPU"
          f" {statistics.median(r['cpu'] for r in warms) - floor['cpu']:.2f}s, of which phases"
          f" {statistics.median(r['phases'] for r in warms):.2f}s (wall)")  # fmt: skip
    # the goal "a refusal or a dry run costs at most Map + 2 s": what each run paid beyond Map
    for name, rs in (
        ("refusals", [r for r in [*colds, *news, *warms] if r["refused"]]),
        ("dry runs", [r for r in [*colds, *news, *warms] if not r["refused"]]),
    ):
        if rs:
            print(f"{name} ({len(rs)}): wall beyond Map median"
                  f" {statistics.median(r['wall'] - r['map'] for r in rs):.2f}s (worst"
                  f" {max(r['wall'] - r['map'] for r in rs):.2f}s); CPU beyond the floor median"
                  f" {statistics.median(r['cpu'] - floor['cpu'] for r in rs):.2f}s")  # fmt: skip
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(reference_line())
    shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=HERE / ".corpus" / "corpus")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--build-index", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--tree-id", help=argparse.SUPPRESS)
    parser.add_argument("--pytest", action="store_true", help="time the real command instead")
    parser.add_argument("--commands", type=int, default=len(COMMANDS), help="the first N only")
    parser.add_argument(
        "--pytest-arg", action="append", default=[], help="an argument for every pytest run"
    )
    parser.add_argument(
        "--python", default=sys.executable, help="--pytest: the interpreter (a venv's) to run"
    )
    parser.add_argument("command", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.build_index:
            print(json.dumps(build(args.corpus, args.child)))
        else:
            print(json.dumps(child(args.corpus, args.child, args.command, args.tree_id)))
        return 0
    if args.pytest:
        whole_process(args.corpus, COMMANDS[: args.commands], args.pytest_arg, args.python)
        return 0
    print(reference_line())
    # refresh the clone's git index once (see the module doc); a user's checkout is so
    subprocess.run(["git", "-C", str(args.corpus), "status", "--porcelain"],
                   capture_output=True, check=True)  # fmt: skip
    tree = subprocess.run(["git", "-C", str(args.corpus), "rev-parse", "HEAD^{tree}"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    files = [p for p in args.corpus.rglob("*.py") if p.is_file() and not p.is_symlink()]
    lines = sum(p.read_bytes().count(b"\n") for p in files)
    print(f"corpus {args.corpus}: {len(files):,} Python files, {lines:,} lines")
    print(f"{args.runs} runs each; wall and CPU of Map+Logic only (CPU includes ripgrep);"
          " parsed c/n: files parsed by a cold / warm-new run")  # fmt: skip
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    shared = Path(tempfile.mkdtemp(prefix="bench-map-new-"))
    built = measure(args.corpus, shared, None)
    print(
        f"index build: {float(str(built['wall'])):.1f}s wall, {float(str(built['cpu'])):.1f}s CPU,"
        f" {float(str(built['size_mb'])):.0f} MB on disk; then the slices of"
        f" {built['sliced']:,} files: {float(str(built['slice_wall'])):.1f}s wall,"
        f" {float(str(built['slice_cpu'])):.1f}s CPU, {float(str(built['slices_mb'])):.0f} MB;"
        f" peak RSS {float(str(built['rss_mb'])):.0f} MB\n"
    )
    header = (
        f"{'command':<44} {'cold wall':>9} {'cold cpu':>8} {'warm wall':>9} {'warm cpu':>8}"
        f" {'new wall':>8} {'new cpu':>7} {'+tree wall':>10} {'+tree cpu':>9}"
        f" {'rg wall':>7} {'rg cpu':>7} {'peak RSS':>9}"
        f" {'parsed c/n':>10}  top kept slice"
    )
    print(header)
    print("-" * len(header))
    all_cold: list[float] = []
    all_warm: list[float] = []
    all_new: list[float] = []
    all_new_cpu: list[float] = []
    all_known: list[float] = []
    all_known_cpu: list[float] = []
    all_rg: list[float] = []
    peak = float(str(built["rss_mb"]))
    for command in COMMANDS:
        cold = []
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as tmp:
                cold.append(measure(args.corpus, Path(tmp), command))
        with tempfile.TemporaryDirectory() as tmp:
            measure(args.corpus, Path(tmp), command)
            warm = [measure(args.corpus, Path(tmp), command) for _ in range(args.runs)]
            assert all(r["cached_result"] == 1 for r in warm), "warm must be a lookup"
            new, rg_new, known = [], [], []
            for _ in range(args.runs):  # interleaved: the same load for both
                for name in ("search", "index", "results"):
                    for stale in Path(tmp).glob(f"{name}.sqlite*"):
                        stale.unlink()
                rg_new.append(measure(args.corpus, Path(tmp), command))
                assert rg_new[-1]["index"] == 0
                with tempfile.TemporaryDirectory() as fresh:  # only what the build left
                    shutil.copytree(shared, fresh, dirs_exist_ok=True)
                    new.append(measure(args.corpus, Path(fresh), command))
                assert new[-1]["index"] == 1, "warm-new must search the index"
                with tempfile.TemporaryDirectory() as fresh:
                    shutil.copytree(shared, fresh, dirs_exist_ok=True)
                    known.append(measure(args.corpus, Path(fresh), command, tree))
                assert known[-1]["index"] == 1

        def med(runs: list[dict[str, object]], key: str) -> float:
            return statistics.median(float(str(r[key])) for r in runs)

        rss = max(float(str(r["rss_mb"])) for r in [*cold, *warm, *new, *known])
        peak = max(peak, rss)
        all_cold.append(med(cold, "wall"))
        all_warm.append(med(warm, "wall"))
        all_new.append(med(new, "wall"))
        all_new_cpu.append(med(new, "cpu"))
        all_known.append(med(known, "wall"))
        all_known_cpu.append(med(known, "cpu"))
        all_rg.append(med(rg_new, "wall"))
        label = command.replace("\n", " ")[:43]
        print(
            f"{label:<44} {med(cold, 'wall'):>8.2f}s {med(cold, 'cpu'):>7.2f}s"
            f" {med(warm, 'wall'):>8.2f}s {med(warm, 'cpu'):>7.2f}s"
            f" {med(new, 'wall'):>7.2f}s {med(new, 'cpu'):>6.2f}s"
            f" {med(known, 'wall'):>9.2f}s {med(known, 'cpu'):>8.2f}s"
            f" {med(rg_new, 'wall'):>6.2f}s {med(rg_new, 'cpu'):>6.2f}s {rss:>7.0f}MB"
            f" {med(cold, 'parsed'):>4.0f}/{med(new, 'parsed'):<4.0f}  {cold[0]['top']}"
        )
    print("-" * len(header))
    print(
        f"median over commands: cold {statistics.median(all_cold):.2f}s, "
        f"warm {statistics.median(all_warm):.2f}s, warm-new {statistics.median(all_new):.2f}s; "
        f"worst cold {max(all_cold):.2f}s, worst warm {max(all_warm):.2f}s, "
        f"worst warm-new {max(all_new):.2f}s; warm-new with ripgrep instead of the index "
        f"{statistics.median(all_rg):.2f}s; peak RSS {peak:.0f} MB"
    )
    print(
        f"warm-new CPU median {statistics.median(all_new_cpu):.2f}s (worst"
        f" {max(all_new_cpu):.2f}s); with the session's tree id: wall"
        f" {statistics.median(all_known):.2f}s (worst {max(all_known):.2f}s), CPU"
        f" {statistics.median(all_known_cpu):.2f}s (worst {max(all_known_cpu):.2f}s)"
    )
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(reference_line())
    shutil.rmtree(shared, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
