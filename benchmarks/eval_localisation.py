"""Localisation quality from real history: commit message -> the files and functions it changed.

For each project (bare mirrors, see ``build_corpus.py``) the newest qualifying commits are
cases; the tree they are searched in is the *parent of the oldest case*, so no case can see
its own change (no leakage), at the price of a slightly older tree for the newer cases.

A commit qualifies when it is not a merge, its message says something (>= 4 words after
removing issue numbers, URLs and trailers; not a release/bump/lint/typo commit), and it
modifies 1-3 non-test Python files that exist in the base tree with <= 300 changed lines.
Truth: those files; and the functions/methods whose lines (in the commit's parent) the diff
touches -- for function-level recall, cases without such a function are left out.

Ranked by:
- ``ours``: Map (`map_repository`, no memory; an in-memory slice cache per tree, which
  changes only the time), files in MapResult order, slices in score order;
- ``bm25``: plain BM25 over whole files (and, for functions, over every function/method of
  the tree), same tokeniser (`split_identifier`) and stop words.

Reported: file recall@1/@5/@10 and function recall@10, each the mean over cases of
|truth in top k| / |truth|, and the recall of Map's whole candidate list (its ceiling).
``--tune`` searches the `Weights` by coordinate ascent on the even-numbered cases and
reports the odd-numbered (held-out) ones for default and tuned weights.

``--bugs FILE`` evaluates bug reports instead (``benchmarks/data/bug_cases.jsonl``, built by
``build_bug_eval.py``): each case's command is the issue's title and body, searched in the
fix's parent commit; file recall of Map (``MapResult.files`` order) and of BM25 over files,
tuning and held-out projects reported apart.

Usage::

    python benchmarks/eval_localisation.py [--per-project 30] [--tune] [--save FILE]
    python benchmarks/eval_localisation.py --bugs benchmarks/data/bug_cases.jsonl [--save FILE]
"""

from __future__ import annotations

import argparse
import json
import pickle
import re
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from build_corpus import mirror_of  # noqa: E402

from pytest_orchestrator.phases.map.phase import map_repository  # noqa: E402
from pytest_orchestrator.phases.map.rank import DEFAULT_WEIGHTS, Weights, bm25_scores  # noqa: E402
from pytest_orchestrator.phases.map.slice_cache import SliceCache  # noqa: E402
from pytest_orchestrator.phases.map.slicing import slice_source  # noqa: E402
from pytest_orchestrator.phases.map.terms import STOP_WORDS, split_identifier  # noqa: E402

PROJECTS = [
    "sympy/sympy",
    "sqlalchemy/sqlalchemy",
    "networkx/networkx",
    "pytest-dev/pytest",
    "sphinx-doc/sphinx",
    "python/mypy",
    "astropy/astropy",
    "twisted/twisted",
]
_SKIP_SUBJECT = re.compile(
    r"^(merge|bump|release|prepare|version|revert|typo|pre-commit|\[pre-commit|lint|format|"
    r"style|black|isort|flake8|ruff|mypy:? fix|update (changelog|copyright|version))",
    re.IGNORECASE,
)
_TRAILER = re.compile(r"^[\w-]+-by:|^Co-authored|^Change-Id:|^Fixes:|^Closes:", re.IGNORECASE)
_NOISE = re.compile(r"https?://\S+|\(#\d+\)|#\d+|gh-\d+|\[[^\]]*\]")


def is_test(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return (
        "/tests/" in f"/{path}"
        or "/test/" in f"/{path}"
        or "/testing/" in f"/{path}"
        or name.startswith("test_")
        or name.endswith("_test.py")
        or name == "conftest.py"
    )


def clean_message(subject: str, body: str) -> str:
    lines = [subject] + [ln for ln in body.splitlines() if ln.strip() and not _TRAILER.match(ln)]
    text = _NOISE.sub(" ", "\n".join(lines))
    return text[:600].strip()


@dataclass
class Case:
    project: str
    commit: str
    message: str
    files: list[str]
    functions: list[tuple[str, str]] = field(default_factory=list)


def git(git_dir: Path, *args: str) -> str:
    return subprocess.run(
        ["git", f"--git-dir={git_dir}", *args], capture_output=True, text=True, check=False
    ).stdout


def changed_functions(git_dir: Path, commit: str, path: str) -> list[tuple[str, str]]:
    """Functions/methods of ``path`` (in the commit's parent) whose lines the commit changes."""
    old = subprocess.run(
        ["git", f"--git-dir={git_dir}", "show", f"{commit}^:{path}"], capture_output=True
    ).stdout
    if not old:
        return []
    diff = git(git_dir, "diff", "-U0", f"{commit}^", commit, "--", path)
    touched: set[int] = set()
    for m in re.finditer(r"^@@ -(\d+)(?:,(\d+))? ", diff, re.MULTILINE):
        start, count = int(m.group(1)), int(m.group(2) or "1")
        touched.update(range(start, start + max(count, 1)))
    sliced = slice_source(path, old)
    return sorted(
        {
            (path, s.symbol)
            for s in sliced.slices
            if s.kind in ("function", "method")
            and any(s.start_line <= line <= s.end_line for line in touched)
        }
    )


def mine(project: str, git_dir: Path, per_project: int) -> tuple[str, list[Case]]:
    """The newest qualifying commits of a project, and the base commit they are searched at."""
    log = git(
        git_dir,
        "log",
        "--no-merges",
        "-n",
        "4000",
        "--format=%x01%H%x02%s%x02%b%x03",
        "--numstat",
        "HEAD",
    )
    picked: list[Case] = []
    for record in log.split("\x01")[1:]:
        head, _, stats = record.partition("\x03")
        commit, subject, body = ([*head.split("\x02"), "", ""])[:3]
        if _SKIP_SUBJECT.match(subject.strip()):
            continue
        message = clean_message(subject, body)
        if len(re.findall(r"[A-Za-z]{2,}", message)) < 4:
            continue
        files: list[str] = []
        changed = 0
        other_code = False
        for line in stats.strip().splitlines():
            parts = line.split("\t")
            if len(parts) != 3 or not parts[2].endswith(".py") or "=>" in parts[2]:
                continue
            if is_test(parts[2]):
                continue
            if parts[0] == "-":
                other_code = True
                continue
            files.append(parts[2])
            changed += int(parts[0]) + int(parts[1])
        if other_code or not 1 <= len(files) <= 3 or changed > 300:
            continue
        picked.append(Case(project, commit, message, files))
        if len(picked) >= per_project * 2:  # some will not exist at the base
            break
    picked = picked[:per_project]
    if not picked:
        return "", []
    base = git(git_dir, "rev-parse", f"{picked[-1].commit}^").strip()
    present = set(git(git_dir, "ls-tree", "-r", "--name-only", base).splitlines())
    cases = [c for c in picked if all(f in present for f in c.files)]
    for c in cases:
        c.functions = [fn for f in c.files for fn in changed_functions(git_dir, c.commit, f)]
    return base, cases


def extract_py(git_dir: Path, commit: str, dest: Path) -> None:
    """The Python files of ``commit`` into ``dest`` (once), as a git-less tree."""
    if dest.exists():
        return
    tmp = dest.with_name(dest.name + ".tmp")
    subprocess.run(["rm", "-rf", str(tmp)], check=True)
    tmp.mkdir(parents=True)
    listing = git(git_dir, "ls-tree", "-r", "-z", commit)
    batch = subprocess.Popen(
        ["git", f"--git-dir={git_dir}", "cat-file", "--batch"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert batch.stdin is not None
    assert batch.stdout is not None
    for entry in listing.split("\0"):
        meta, _, path = entry.partition("\t")
        if not path.endswith(".py") or not meta.startswith("100"):
            continue
        batch.stdin.write(meta.split()[2].encode() + b"\n")
        batch.stdin.flush()
        header = batch.stdout.readline().split()
        if len(header) < 3 or header[1] != b"blob":
            continue
        data = batch.stdout.read(int(header[2]))
        batch.stdout.read(1)
        out = tmp / path
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
    batch.stdin.close()
    batch.wait()
    tmp.rename(dest)


@dataclass
class Baseline:
    """Plain BM25 over every file and over every function/method of one tree."""

    files: list[str]
    file_tf: list[Counter[str]]
    file_len: list[int]
    funcs: list[tuple[str, str]]
    func_tf: list[Counter[str]]
    func_len: list[int]

    @classmethod
    def build(cls, root: Path, functions: bool = True) -> Baseline:
        b = cls([], [], [], [], [], [])
        for path in sorted(root.rglob("*.py")):
            raw = path.read_bytes()
            rel = path.relative_to(root).as_posix()
            text = raw.decode("utf-8", errors="replace")
            toks = split_identifier(text)
            b.files.append(rel)
            b.file_tf.append(Counter(toks))
            b.file_len.append(len(toks))
            if not functions:
                continue
            sliced = slice_source(rel, raw)
            for s, (lo, hi) in zip(sliced.slices, sliced.byte_ranges, strict=True):
                if s.kind in ("function", "method"):
                    ft = split_identifier(raw[lo:hi].decode("utf-8", errors="replace"))
                    b.funcs.append((rel, s.symbol))
                    b.func_tf.append(Counter(ft))
                    b.func_len.append(len(ft))
        return b

    @staticmethod
    def _rank(tfs: list[Counter[str]], lens: list[int], query: list[str], k: int) -> list[int]:
        scores = bm25_scores(tfs, lens, query=query)
        return sorted(range(len(tfs)), key=lambda i: -scores[i])[:k]

    def rank_files(self, query: list[str], k: int = 10) -> list[str]:
        return [self.files[i] for i in self._rank(self.file_tf, self.file_len, query, k)]

    def rank_functions(self, query: list[str], k: int = 10) -> list[tuple[str, str]]:
        return [self.funcs[i] for i in self._rank(self.func_tf, self.func_len, query, k)]


def query_words(message: str) -> list[str]:
    return [w for w in split_identifier(message) if len(w) > 1 and w not in STOP_WORDS]


def recall(truth: list[object], ranked: list[object], k: int) -> float:
    if not truth:
        return 0.0
    top = set(ranked[:k])
    return sum(1 for t in truth if t in top) / len(truth)


@dataclass
class Scored:
    """One case's candidates from Map: (path, symbol, components, kind) in Map's order."""

    case: Case
    slices: list[tuple[Any, ...]]
    base_files: list[str]
    base_funcs: list[tuple[str, str]]
    seconds: float


def ours_ranking(scored: Scored, weights: Weights) -> tuple[list[str], list[tuple[str, str]]]:
    order = sorted(scored.slices, key=lambda s: -weights.score(s[2]))
    files = list(dict.fromkeys(s[0] for s in order))
    # like the baseline, rank only functions and methods for function recall
    funcs = list(
        dict.fromkeys((s[0], s[1]) for s in order if s[3:4] in ((), ("function",), ("method",)))
    )
    return files, funcs


def table(rows: list[Scored], weights: Weights) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, list[float]]] = {"ours": {}, "bm25": {}}
    for r in rows:
        files, funcs = ours_ranking(r, weights)
        for name, f_rank, fn_rank in (
            ("ours", files, funcs),
            ("bm25", r.base_files, r.base_funcs),
        ):
            for k in (1, 5, 10, 10_000):
                out[name].setdefault(f"file@{k}", []).append(
                    recall(list(r.case.files), list(f_rank), k)
                )
            if r.case.functions:
                out[name].setdefault("func@10", []).append(
                    recall(list(r.case.functions), list(fn_rank), 10)
                )
    return {
        name: {metric: statistics.mean(v) for metric, v in metrics.items()}
        for name, metrics in out.items()
    }


def print_table(title: str, rows: list[Scored], weights: Weights) -> dict[str, dict[str, float]]:
    t = table(rows, weights)
    n_func = sum(1 for r in rows if r.case.functions)
    print(f"\n{title}: {len(rows)} cases ({n_func} with changed functions)")
    print(
        f"{'ranking':<22} {'file R@1':>9} {'file R@5':>9} {'file R@10':>10} {'func R@10':>10}"
        f" {'candidates':>11}"
    )
    for name, label in (("bm25", "BM25 over files"), ("ours", "Map (ours)")):
        m = t[name]
        cands = f"{m['file@10000']:>11.3f}" if name == "ours" else f"{'':>11}"
        print(
            f"{label:<22} {m['file@1']:>9.3f} {m['file@5']:>9.3f} {m['file@10']:>10.3f}"
            f" {m.get('func@10', 0.0):>10.3f}{cands}"
        )
    o, b = t["ours"], t["bm25"]
    print(
        f"{'ours - bm25':<22} {o['file@1'] - b['file@1']:>+9.3f} {o['file@5'] - b['file@5']:>+9.3f}"
        f" {o['file@10'] - b['file@10']:>+10.3f}"
        f" {o.get('func@10', 0) - b.get('func@10', 0):>+10.3f}"
    )
    return t


def objective(rows: list[Scored], weights: Weights) -> float:
    m = table(rows, weights)["ours"]
    return m["file@1"] + m["file@5"] + m["file@10"] + m.get("func@10", 0.0)


#: Weights the search leaves alone: the planner's contract that a named identifier's
#: definition ranks first (tests/phases/map/test_rank.py), and evidence commits never carry (a stack
#: trace, the memory of earlier runs).
FIXED = ("definition", "trace", "memory")


def tune(rows: list[Scored], start: Weights) -> Weights:
    """Coordinate ascent over each free weight on a grid, three sweeps."""
    best, best_score = start, objective(rows, start)
    grid = [-2.0, -1.0, -0.5, -0.25, 0.0, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0]
    for _ in range(3):
        improved = False
        for name in [n for n in start.as_dict() if n not in FIXED]:
            for value in grid:
                candidate = replace(best, **{name: value})
                score = objective(rows, candidate)
                if score > best_score + 1e-9:
                    best, best_score, improved = candidate, score, True
        if not improved:
            break
    return best


@dataclass
class BugRow:
    """One bug-report case: the truth and both rankings (files, best first)."""

    case: dict[str, Any]
    ours: list[str]
    bm25: list[str]
    seconds: float
    stats: dict[str, float]


def bug_command(case: dict[str, Any]) -> str:
    """What a team pastes in: the issue's title, a blank line, its body."""
    return f"{case['title']}\n\n{case['body']}"


def run_bugs(path: Path, mirrors: Path, work: Path, only: list[str] | None) -> list[BugRow]:
    """Map and BM25 over every case of ``path``, each at its fix's parent commit."""
    cases = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if only:
        cases = [c for c in cases if c["project"] in only or c["id"] in only]
    rows: list[BugRow] = []
    for case in cases:
        git_dir = mirror_of(case["project"], mirrors, HERE / ".corpus" / "mirrors")
        tree = work / f"{case['project'].replace('/', '+')}@{case['parent'][:12]}"
        extract_py(git_dir, case["parent"], tree)
        saved = tree.with_name(tree.name + ".files.pickle")
        if saved.exists():
            baseline = pickle.loads(saved.read_bytes())
        else:
            baseline = Baseline.build(tree, functions=False)
            saved.write_bytes(pickle.dumps(baseline))
        command = bug_command(case)
        t0 = time.perf_counter()
        mapped = map_repository(tree, command)
        seconds = time.perf_counter() - t0
        rows.append(
            BugRow(
                case,
                list(mapped.files),
                baseline.rank_files(query_words(command), k=100),
                seconds,
                dict(mapped.stats),
            )
        )
        print(
            f"  {case['id']:<36} {seconds:5.2f}s  gold {case['files']}  "
            f"ours@1 {mapped.files[:1]}  bm25@1 {rows[-1].bm25[:1]}",
            flush=True,
        )
    return rows


def bug_table(rows: list[BugRow]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name in ("bm25", "ours"):
        out[name] = {
            f"@{k}": statistics.mean(
                recall(list(r.case["files"]), list(getattr(r, name)), k) for r in rows
            )
            for k in (1, 5, 10, 10_000)
        }
    return out


def print_bugs(rows: list[BugRow]) -> None:
    print(
        f"\n{'split':<9} {'cases':>5} {'projects':>8}  {'ranking':<16} {'R@1':>6} {'R@5':>6}"
        f" {'R@10':>6} {'all':>6}"
    )
    for split in ("tuning", "heldout", "all"):
        part = [r for r in rows if split == "all" or r.case["split"] == split]
        if not part:
            continue
        t = bug_table(part)
        n_proj = len({r.case["project"] for r in part})
        for name, label in (("bm25", "BM25 over files"), ("ours", "Map")):
            m = t[name]
            print(
                f"{split:<9} {len(part):>5} {n_proj:>8}  {label:<16} {m['@1']:>6.3f}"
                f" {m['@5']:>6.3f} {m['@10']:>6.3f} {m['@10000']:>6.3f}"
            )
        o, b = t["ours"], t["bm25"]
        print(
            f"{split:<9} {'':>5} {'':>8}  {'Map - BM25':<16} {o['@1'] - b['@1']:>+6.3f}"
            f" {o['@5'] - b['@5']:>+6.3f} {o['@10'] - b['@10']:>+6.3f}"
        )
    print(
        f"\nper project: {'split':<8} {'n':>3} {'bm25@1':>7} {'map@1':>7} {'bm25@5':>7}"
        f" {'map@5':>7}"
    )
    for project in sorted({r.case["project"] for r in rows}):
        part = [r for r in rows if r.case["project"] == project]
        t = bug_table(part)
        print(
            f"  {project:<30} {part[0].case['split']:<8} {len(part):>3}"
            f" {t['bm25']['@1']:>7.3f} {t['ours']['@1']:>7.3f}"
            f" {t['bm25']['@5']:>7.3f} {t['ours']['@5']:>7.3f}"
        )
    secs = [r.seconds for r in rows]
    print(f"\nMap seconds: median {statistics.median(secs):.2f}, max {max(secs):.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mirrors", type=Path, default=Path("/work/.mirror"))
    parser.add_argument("--work", type=Path, default=HERE / ".corpus" / "eval")
    parser.add_argument("--per-project", type=int, default=30)
    parser.add_argument("--projects", nargs="*", default=PROJECTS)
    parser.add_argument("--tune", action="store_true")
    parser.add_argument("--save", type=Path, help="write per-case results (JSON)")
    parser.add_argument("--rows", type=Path, help="pickle of Map's candidates: reuse or write")
    parser.add_argument("--bugs", type=Path, help="evaluate bug reports (bug_cases.jsonl)")
    parser.add_argument("--only", nargs="*", help="with --bugs: only these projects or case ids")
    args = parser.parse_args()
    if args.bugs:
        bug_rows = run_bugs(args.bugs, args.mirrors, HERE / ".corpus" / "bugs", args.only)
        print_bugs(bug_rows)
        if args.save:
            args.save.write_text(
                json.dumps(
                    [
                        {
                            "id": r.case["id"],
                            "split": r.case["split"],
                            "files": r.case["files"],
                            "ours": r.ours[:10],
                            "bm25": r.bm25[:10],
                            "seconds": round(r.seconds, 3),
                            "stats": r.stats,
                        }
                        for r in bug_rows
                    ],
                    indent=1,
                )
            )
        return 0
    rows: list[Scored] = []
    if args.rows and args.rows.exists():
        rows = pickle.loads(args.rows.read_bytes())
        print(f"{len(rows)} cases from {args.rows}")
    for project in [] if rows else args.projects:
        git_dir = mirror_of(project, args.mirrors, HERE / ".corpus" / "mirrors")
        base, cases = mine(project, git_dir, args.per_project)
        if not cases:
            print(f"{project}: no cases")
            continue
        tree = args.work / f"{project.replace('/', '+')}@{base[:12]}"
        extract_py(git_dir, base, tree)
        t0 = time.perf_counter()
        saved = tree.with_name(tree.name + ".baseline.pickle")
        if saved.exists():
            baseline = pickle.loads(saved.read_bytes())
        else:
            baseline = Baseline.build(tree)
            saved.write_bytes(pickle.dumps(baseline))
        t_base = time.perf_counter() - t0
        seconds = []
        # one in-memory slice cache per tree: a file is parsed once for all its cases, as
        # on a user's machine across runs (the ranking is the same with or without it)
        cache = SliceCache(None)
        for case in cases:
            t1 = time.perf_counter()
            mapped = map_repository(tree, case.message, cache=cache)
            seconds.append(time.perf_counter() - t1)
            q = query_words(case.message)
            rows.append(
                Scored(
                    case,
                    [
                        (r.slice.path, r.slice.symbol, dict(r.components), r.slice.kind)
                        for r in mapped.slices
                    ],
                    baseline.rank_files(q),
                    baseline.rank_functions(q),
                    seconds[-1],
                )
            )
        print(
            f"{project:<24} base {base[:12]}  {len(cases):>3} cases  "
            f"{len(baseline.files):>5} files  Map median {statistics.median(seconds):.2f}s  "
            f"(baseline index {t_base:.1f}s)",
            flush=True,
        )
    if args.rows and not args.rows.exists():
        args.rows.write_bytes(pickle.dumps(rows))
    print_table("All cases, default weights", rows, DEFAULT_WEIGHTS)
    print(f"default weights: {DEFAULT_WEIGHTS.as_dict()}")
    print(
        f"\nper project (default weights): {'bm25 R@1':>9} {'ours R@1':>9} {'bm25 R@10':>10}"
        f" {'ours R@10':>10}"
    )
    for project in dict.fromkeys(r.case.project for r in rows):
        t = table([r for r in rows if r.case.project == project], DEFAULT_WEIGHTS)
        print(
            f"  {project:<28} {t['bm25']['file@1']:>9.3f} {t['ours']['file@1']:>9.3f}"
            f" {t['bm25']['file@10']:>10.3f} {t['ours']['file@10']:>10.3f}"
        )
    tuned_on = {"sqlalchemy/sqlalchemy", "sphinx-doc/sphinx", "python/mypy", "networkx/networkx"}
    unseen = [r for r in rows if r.case.project not in tuned_on]
    if unseen:
        print_table("Projects the weights were never tuned on", unseen, DEFAULT_WEIGHTS)
    if args.tune:
        train, held = rows[0::2], rows[1::2]
        tuned = tune(train, DEFAULT_WEIGHTS)
        print(f"\ntuned on {len(train)} even cases: {tuned.as_dict()}")
        print_table("Held-out (odd) cases, default weights", held, DEFAULT_WEIGHTS)
        print_table("Held-out (odd) cases, tuned weights", held, tuned)
    if args.save:
        args.save.write_text(
            json.dumps(
                [
                    {
                        "project": r.case.project,
                        "commit": r.case.commit,
                        "message": r.case.message,
                        "files": r.case.files,
                        "functions": r.case.functions,
                        "ours_files": ours_ranking(r, DEFAULT_WEIGHTS)[0][:10],
                        "bm25_files": r.base_files,
                        "seconds": r.seconds,
                    }
                    for r in rows
                ],
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
