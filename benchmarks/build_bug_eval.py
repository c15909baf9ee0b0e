"""Build the bug-report localisation set: an issue's title and body -> the files its fix changed.

A case is a real GitHub issue of a public project and the commit that fixed it, found in the
project's history by a closing reference in the commit message (``Fixes #N``, ``closes #N``,
``resolves #N``, ``fix for #N``) or, where a project records its fixes in changelog fragments
or a changelog with issue roles, by that record in the fixing commit (``CHANGES/N.bugfix``,
``changelog.d/N.bugfix.md``, ``docs/changelog/N.bugfix.rst``, ``:issue:`N```). Truth: the
non-test Python files the fixing commit modified (1-4 of them, each existing in the parent);
the tree searched is the fix's parent commit, so no case sees its own fix.

The issue texts (title and description, as filed, without the discussion) are stored in
``benchmarks/data/bug_issues.jsonl``: they were read from stored copies of the projects' public
issue threads and cannot be derived from git. This script joins them with the histories
(bare mirrors, see ``build_corpus.mirror_of``) and writes ``benchmarks/data/bug_cases.jsonl``,
one case a line: ``id, project, split, issue, commit, parent, title, body, files``. Issues
whose fix cannot be found (no closing reference, only tests or docs changed, a new file, more
than four files) are left out and counted.

Projects are split once, by project, into ``tuning`` (ranking may be tuned on them) and
``heldout`` (reported only). None is a SWE-bench Lite/Verified repository.

Usage::

    python benchmarks/build_bug_eval.py                 # writes bug_cases.jsonl
    python benchmarks/build_bug_eval.py --links REPO    # issue numbers with a fix in REPO
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
sys.path.insert(0, str(HERE))

from build_corpus import mirror_of  # noqa: E402

from pytest_orchestrator.repo.files import is_test_path  # noqa: E402

TUNING = [
    "pallets/click",
    "python-attrs/attrs",
    "marshmallow-code/marshmallow",
    "psf/black",
    "aio-libs/aiohttp",
    "tox-dev/tox",
    "scrapy/scrapy",
    "tkem/cachetools",
    "astanin/python-tabulate",
]
HELDOUT = [
    "pallets/jinja",
    "pallets/werkzeug",
    "encode/httpx",
    "Textualize/rich",
    "arrow-py/arrow",
    "networkx/networkx",
    "tornadoweb/tornado",
    "urllib3/urllib3",
    "python-poetry/poetry",
    "pygments/pygments",
    "pyparsing/pyparsing",
]
MAX_FILES = 4
_CLOSING = re.compile(
    r"\b(?:fix(?:e[sd])?|close[sd]?|resolve[sd]?)(?:\s+for)?[:\s]+"
    r"((?:(?:#|gh-|https://github\.com/[\w.-]+/[\w.-]+/issues/)\d+[,\s]*(?:and\s+)?)+)",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"(?:#|gh-|/issues/)(\d+)")
_FRAGMENT = re.compile(
    r"^(?:CHANGES|changes|changelog\.d|docs/changelog|news|changes)/(\d+)\.[\w.]*"
    r"(?:bugfix|bug|fix|fixed)[\w.]*$"
)
_ISSUE_ROLE = re.compile(r"^\+.*:(?:issue|gh):`(\d+)`", re.MULTILINE)
#: Release and housekeeping commits mention issues without fixing them.
_NOT_A_FIX = re.compile(r"^(?:merge|bump|release|prepare|version|update changelog)", re.IGNORECASE)
#: Fixes that are SWE-bench Lite instances (by pull request), held out for independent checks.
SWE_BENCH_PRS = {"marshmallow-code/marshmallow": {1343, 1359}}


@dataclass(frozen=True)
class Fix:
    """One commit that fixes an issue, and the code files it modified."""

    commit: str
    parent: str
    files: tuple[str, ...]


def git(git_dir: Path, *args: str) -> str:
    return subprocess.run(
        ["git", f"--git-dir={git_dir}", *args], capture_output=True, text=True, check=False
    ).stdout


def links(git_dir: Path) -> dict[int, Fix]:
    """Issue number -> the oldest non-merge commit that says it fixes it and modifies only
    1-`MAX_FILES` existing non-test Python files (besides tests, docs, changelogs)."""
    log = git(
        git_dir,
        "log",
        "--no-merges",
        "--reverse",
        "--format=%x01%H %P%x02%B%x03",
        "--name-status",
        "HEAD",
    )
    out: dict[int, Fix] = {}
    for record in log.split("\x01")[1:]:
        head, _, rest = record.partition("\x02")
        message, _, status = rest.partition("\x03")
        ids = head.split()
        if len(ids) != 2 or _NOT_A_FIX.match(message):
            continue
        numbers = {int(n) for m in _CLOSING.finditer(message) for n in _NUMBER.findall(m.group(1))}
        files: list[str] = []
        added_code = False
        for line in status.strip().splitlines():
            parts = line.split("\t")
            if len(parts) < 2:
                continue
            kind, path = parts[0], parts[-1]
            frag = _FRAGMENT.match(path)
            if frag:
                numbers.add(int(frag.group(1)))
            if not path.endswith(".py") or is_test_path(path):
                continue
            if kind == "M":
                files.append(path)
            else:
                added_code = True
        if not numbers and any(p.endswith((".rst", ".md")) for p in status.split()):
            roles = set(_ISSUE_ROLE.findall(_changelog_diff(git_dir, ids[0])))
            # a release's changelog lists many issues: only a fix's own entry links
            numbers = {int(n) for n in roles} if len(roles) <= 2 else set()
        if not numbers or added_code or not 1 <= len(files) <= MAX_FILES:
            continue
        for n in numbers:
            out.setdefault(n, Fix(ids[0], ids[1], tuple(sorted(files))))
    return out


def _changelog_diff(git_dir: Path, commit: str) -> str:
    return git(git_dir, "show", "--format=", commit, "--", "CHANGES*", "CHANGELOG*", "docs/*.rst")


def load_issues(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mirrors", type=Path, default=Path("/work/.mirror"))
    parser.add_argument("--issues", type=Path, default=DATA / "bug_issues.jsonl")
    parser.add_argument("--out", type=Path, default=DATA / "bug_cases.jsonl")
    parser.add_argument("--links", help="print the issue numbers of REPO that have a fix")
    args = parser.parse_args()
    local = HERE / ".corpus" / "mirrors"
    if args.links:
        git_dir = mirror_of(args.links, args.mirrors, local)
        for n, found in sorted(links(git_dir).items()):
            print(n, git(git_dir, "log", "-1", "--format=%s", found.commit).strip())
        return 0
    issues = load_issues(args.issues)
    by_project: dict[str, list[dict[str, object]]] = {}
    for issue in issues:
        by_project.setdefault(str(issue["project"]), []).append(issue)
    cases: list[dict[str, object]] = []
    dropped: Counter[str] = Counter()
    for project in TUNING + HELDOUT:
        wanted = by_project.get(project, [])
        if not wanted:
            continue
        git_dir = mirror_of(project, args.mirrors, local)
        fixes = links(git_dir)
        excluded = SWE_BENCH_PRS.get(project, set())
        for issue in wanted:
            number = int(str(issue["issue"]))
            fix = fixes.get(number)
            subject = git(git_dir, "log", "-1", "--format=%s", fix.commit) if fix else ""
            if fix is not None and any(f"#{n})" in subject for n in excluded):
                fix = None
            if fix is None:
                dropped[project] += 1
                continue
            cases.append(
                {
                    "id": f"{project}#{number}",
                    "project": project,
                    "split": "tuning" if project in TUNING else "heldout",
                    "issue": number,
                    "commit": fix.commit,
                    "parent": fix.parent,
                    "title": issue["title"],
                    "body": issue["body"],
                    "files": list(fix.files),
                }
            )
    unknown = set(by_project) - set(TUNING + HELDOUT)
    if unknown:
        print(f"issues of projects in no split, left out: {sorted(unknown)}")
    cases.sort(key=lambda c: (str(c["project"]), int(str(c["issue"]))))
    args.out.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in cases))
    per = Counter(str(c["project"]) for c in cases)
    for project in TUNING + HELDOUT:
        split = "tuning" if project in TUNING else "heldout"
        print(f"{project:<32} {split:<8} {per[project]:>4} cases  {dropped[project]:>3} dropped")
    splits = Counter(str(c["split"]) for c in cases)
    print(
        f"total {len(cases)} cases from {len(per)} projects "
        f"(tuning {splits['tuning']}, held-out {splits['heldout']}) -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
