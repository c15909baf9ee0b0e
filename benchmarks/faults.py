"""Fault injection: a run signalled at a random moment leaves the checkout as it was, and
after the next cleanup nothing of it remains.

    python benchmarks/faults.py [--runs N] [--seed S] [--command "..."]

Each run copies examples/wheel to a fresh git repository (as examples/run.sh does), makes
the checkout dirty (an unstaged edit and a staged change), starts an orchestration and sends
it SIGINT (to its whole group, like Ctrl-C in a terminal), SIGTERM or SIGKILL (to the
orchestrator alone) at a random moment within the length of an unsignalled run. Then:

* **byte-identical**: every file of the checkout, the index, HEAD, the refs (other than
  ``orchestrate/*``) and ``git status`` are what they were before the run;
* **leftovers**, after `pytest_orchestrator.repo.worktree.clean_stale` (what the next run does
  first) and a few seconds for watchdogs to act: a lease, an extra worktree, an
  ``orchestrate/*`` branch that is not a published commit on top of the base, or a process
  carrying this orchestrator's identity in its environment (see
  `pytest_orchestrator.guard.containment`).

Seeded: the same ``--seed`` sends the same signals at the same offsets.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from pytest_orchestrator.guard.containment import OWNER_ENV
from pytest_orchestrator.repo.worktree import clean_stale

ROOT = Path(__file__).resolve().parents[1]
SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGKILL": signal.SIGKILL}
SETTLE_SECONDS = 5.0
"""A child forked just before a kill -9 is in no lease yet: its watchdog ends it within a
second of starting. Leftover processes are counted after this long."""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout


def make_checkout(dest: Path) -> Path:
    """The example as a committed repository, then made dirty the way a user's often is."""
    repo = dest / "wheel"
    shutil.copytree(ROOT / "examples" / "wheel", repo, ignore=shutil.ignore_patterns(".orch*"))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=faults", "-c", "user.email=faults@example.invalid",
        "commit", "-q", "-m", "wheel-sizing example")  # fmt: skip
    with (repo / "wheel_sizing" / "kelly.py").open("a") as fh:
        fh.write("\n# an uncommitted edit\n")
    with (repo / "wheel_sizing" / "volatility.py").open("a") as fh:
        fh.write("\n# a staged edit\n")
    git(repo, "add", "wheel_sizing/volatility.py")
    return repo


def checkout_state(repo: Path) -> dict[str, str]:
    """Everything of the checkout a run must not change (orchestrate/* refs are results)."""
    state = {
        str(p.relative_to(repo)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(repo.rglob("*"))
        if p.is_file() and ".git" not in p.parts and ".orchestrate" not in p.parts
    }
    refs = git(repo, "for-each-ref", "--format=%(refname) %(objectname)")
    state["<index>"] = git(repo, "ls-files", "--stage")
    state["<HEAD>"] = git(repo, "rev-parse", "HEAD") + git(repo, "symbolic-ref", "HEAD")
    state["<refs>"] = "\n".join(
        line for line in refs.splitlines() if not line.startswith("refs/heads/orchestrate/")
    )
    state["<status>"] = git(repo, "status", "--porcelain")
    return state


def leftovers(repo: Path, base: str, owner: int) -> list[str]:
    found = []
    if (repo / ".git" / "orchestrate").exists():
        found.append("lease")
    if git(repo, "worktree", "list", "--porcelain").count("worktree ") != 1:
        found.append("worktree")
    for line in git(repo, "for-each-ref", "--format=%(refname:short) %(objectname)",
                    "refs/heads/orchestrate/").splitlines():  # fmt: skip
        branch, tip = line.split()
        parent = git(repo, "rev-parse", f"{tip}^").strip() if tip != base else ""
        message = git(repo, "log", "-1", "--format=%B", tip)
        if tip == base or parent != base or "Run: " not in message:
            found.append(f"branch {branch}")
    deadline = time.monotonic() + SETTLE_SECONDS
    while (procs := owned_processes(owner)) and time.monotonic() < deadline:
        time.sleep(0.2)
    found += [f"process {p}" for p in procs]
    return found


def owned_processes(owner: int) -> list[int]:
    """Live processes whose environment names ``owner`` as their orchestrator."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            if proc.environ().get(OWNER_ENV, "").startswith(f"{owner}:"):
                found.append(proc.pid)
        except psutil.Error:
            continue
    return found


@dataclass
class Tally:
    runs: int = 0
    mid_run: int = 0
    identical: int = 0
    with_leftovers: int = 0
    notes: list[str] = field(default_factory=list)


def start(repo: Path, command: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "pytest", "--orchestrate", command],
            cwd=repo,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own foreground-like group, as in a terminal
        )


def calibrate(command: str) -> float:
    """Wall time of one unsignalled run: signals land anywhere within it."""
    with tempfile.TemporaryDirectory() as tmp:
        repo = make_checkout(Path(tmp))
        began = time.monotonic()
        proc = start(repo, command, Path(tmp) / "log")
        proc.wait()
        return time.monotonic() - began


def one_run(name: str, at: float, command: str, tally: Tally) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        repo = make_checkout(Path(tmp))
        base = git(repo, "rev-parse", "HEAD").strip()
        before = checkout_state(repo)
        proc = start(repo, command, Path(tmp) / "log")
        time.sleep(at)
        tally.runs += 1
        if proc.poll() is None:
            tally.mid_run += 1
            if name == "SIGINT":
                os.killpg(proc.pid, signal.SIGINT)
            else:
                proc.send_signal(SIGNALS[name])
        try:
            status = proc.wait(timeout=300)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            status = proc.wait()
            tally.notes.append(f"{name} at {at:.2f}s: no exit within 300 s")
        output = (Path(tmp) / "log").read_bytes()
        # Before the session starts, pytest is still importing plugins: a signal there is
        # pytest's own (a traceback, death by SIGINT) and nothing of the run exists yet.
        when = "" if b"orchestrate: run " in output else " (during pytest's own startup)"
        if b"Traceback" in output and name != "SIGKILL":
            tally.notes.append(f"{name} at {at:.2f}s: a traceback in the output{when}")
        if name != "SIGKILL" and status not in (0, 2):
            tally.notes.append(f"{name} at {at:.2f}s: exit status {status}{when}")
        if checkout_state(repo) == before:
            tally.identical += 1
        else:
            tally.notes.append(f"{name} at {at:.2f}s: the checkout changed")
        clean_stale(repo)
        left = leftovers(repo, base, proc.pid)
        if left:
            tally.with_leftovers += 1
            tally.notes.append(f"{name} at {at:.2f}s: left {', '.join(left)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--command", default="Rename calculate_position_size to position_size")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    length = calibrate(args.command)
    tallies = {name: Tally() for name in SIGNALS}
    for _ in range(args.runs):
        name = rng.choice(sorted(SIGNALS))
        one_run(name, rng.uniform(0.2, length), args.command, tallies[name])
    print(
        f"faults: {args.runs} runs of the example, seed {args.seed}, an unsignalled run takes "
        f"{length:.1f}s; {os.cpu_count()} cores, python {sys.version.split()[0]}"
    )
    print(f"{'signal':<9}{'runs':>6}{'mid-run':>9}{'identical':>11}{'leftovers':>11}")
    for name, t in tallies.items():
        print(f"{name:<9}{t.runs:>6}{t.mid_run:>9}{t.identical:>11}{t.with_leftovers:>11}")
    for t in tallies.values():
        for note in t.notes:
            print(f"  {note}")


if __name__ == "__main__":
    main()
