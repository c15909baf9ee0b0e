"""Assemble the Map benchmark corpus: real Python projects, >= 3,000,000 lines of Python.

Each project's tree at its newest commit is extracted (blobs up to 2 MB; Git LFS pointers and
missing large blobs are skipped) under ``benchmarks/.corpus/corpus/<project>/``, which is
git-ignored and never committed. Projects come from bare mirrors: ``--mirrors DIR`` holding
``<owner>+<name>/repo`` (what the tool library's fetch produces), else a fresh
``git clone --bare --filter=blob:none`` from GitHub into ``benchmarks/.corpus/mirrors``.

The corpus root is then made one git repository with a single commit, as a user's monorepo
(and a run's worktree) would be; each project's ``.gitattributes`` is renamed
``.gitattributes.orig`` first, because working-tree-encoding attributes make ``git add`` of
the assembled tree fail. Nothing else is changed.

Usage::

    python benchmarks/build_corpus.py [--out DIR] [--mirrors DIR]

Prints the composition: files and lines of Python per project, and the total.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: owner/name of the real projects in the corpus (all of their history is real, too: the
#: localisation evaluation mines it).
PROJECTS = [
    "sympy/sympy",
    "sqlalchemy/sqlalchemy",
    "scipy/scipy",
    "numpy/numpy",
    "twisted/twisted",
    "astropy/astropy",
    "python/mypy",
    "networkx/networkx",
    "ansible/ansible",
    "sphinx-doc/sphinx",
    "pytest-dev/pytest",
    "pallets/flask",
    "psf/requests",
]
MAX_BLOB = 2_000_000


def mirror_of(project: str, mirrors: Path, local: Path) -> Path:
    """The bare git directory of ``project``, cloning it when no mirror has it."""
    owner, name = project.split("/")
    for candidate in (mirrors / f"{owner}+{name}" / "repo", local / f"{owner}+{name}.git"):
        if (candidate / "HEAD").exists():
            return candidate
    target = local / f"{owner}+{name}.git"
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["git", "clone", "--bare", "--filter=blob:none", f"https://github.com/{project}", target],
        check=True,
    )
    return target


def extract(git_dir: Path, dest: Path) -> tuple[str, int, int]:
    """Write the HEAD tree of ``git_dir`` into ``dest``; returns (commit, py files, py lines)."""
    git = ["git", f"--git-dir={git_dir}"]
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    listing = subprocess.run(
        [*git, "ls-tree", "-r", "-l", "-z", "HEAD"], capture_output=True, check=True
    ).stdout
    wanted: list[tuple[str, str]] = []
    for entry in listing.split(b"\0"):
        if not entry:
            continue
        meta, _, path = entry.partition(b"\t")
        mode, kind, sha, size = meta.split()
        if kind != b"blob" or mode == b"120000" or not size.isdigit() or int(size) > MAX_BLOB:
            continue
        wanted.append((sha.decode(), path.decode("utf-8", "surrogateescape")))
    py_files = py_lines = 0
    batch = subprocess.Popen(
        [*git, "cat-file", "--batch"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert batch.stdin is not None
    assert batch.stdout is not None
    for sha, path in wanted:
        batch.stdin.write(sha.encode() + b"\n")
        batch.stdin.flush()
        header = batch.stdout.readline().split()
        if len(header) < 3 or header[1] != b"blob":  # missing (a partial mirror): skip
            continue
        data = batch.stdout.read(int(header[2]))
        batch.stdout.read(1)
        out = dest / path
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
        if path.endswith(".py"):
            py_files += 1
            py_lines += data.count(b"\n")
    batch.stdin.close()
    batch.wait()
    return commit.stdout.strip(), py_files, py_lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / ".corpus" / "corpus")
    parser.add_argument("--mirrors", type=Path, default=Path("/work/.mirror"))
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    total_files = total_lines = 0
    print(f"{'project':<24} {'commit':<12} {'py files':>9} {'py lines':>11}")
    for project in PROJECTS:
        name = project.split("/")[1]
        dest = out / name
        git_dir = mirror_of(project, args.mirrors, HERE / ".corpus" / "mirrors")
        if dest.exists():
            commit = subprocess.run(
                ["git", f"--git-dir={git_dir}", "rev-parse", "HEAD"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            files = [p for p in dest.rglob("*.py") if p.is_file() and not p.is_symlink()]
            py_files, py_lines = len(files), sum(p.read_bytes().count(b"\n") for p in files)
        else:
            commit, py_files, py_lines = extract(git_dir, dest)
        total_files += py_files
        total_lines += py_lines
        print(f"{project:<24} {commit[:12]:<12} {py_files:>9,} {py_lines:>11,}")
    print(f"{'total':<24} {'':<12} {total_files:>9,} {total_lines:>11,}")
    if not (out / ".git").exists():
        for attributes in out.glob("*/.gitattributes"):
            attributes.rename(attributes.with_name(".gitattributes.orig"))
        git = ["git", "-C", str(out), "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
        subprocess.run([*git, "init", "-q"], check=True)
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-qm", "corpus"], check=True)
    if total_lines < 3_000_000:
        print("warning: fewer than 3,000,000 lines of Python", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
