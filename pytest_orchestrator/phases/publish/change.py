"""A tested commit ready to publish, and the trailers by which a re-run recognises it.

The tested commit carries trailers naming the command and the base it was made for
(`trailers`): how a re-run of the same command on the same base finds the branch it may
replace (`trailers_match`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

COMMAND_TRAILER: Final = "Orchestrate-Command"
BASE_TRAILER: Final = "Orchestrate-Base"
RUN_TRAILER: Final = "Orchestrate-Run"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def trailers(command: str, base: str, run_id: str) -> str:
    """The git trailers of a tested commit (its last paragraph)."""
    lines = (f"{COMMAND_TRAILER}: {_one_line(command)}", f"{BASE_TRAILER}: {base}")
    return "\n".join((*lines, f"{RUN_TRAILER}: {run_id}")) + "\n"


def trailers_match(message: str, command: str, base: str) -> bool:
    """A commit message made by this tool for ``command`` on ``base``."""
    found = dict(re.findall(r"^(Orchestrate-[A-Za-z]+): (.*)$", message, re.MULTILINE))
    return found.get(COMMAND_TRAILER) == _one_line(command) and found.get(BASE_TRAILER) == base


@dataclass(frozen=True)
class Change:
    """A tested commit ready to publish, and how."""

    repo: Path
    command: str
    branch: str
    """The run's local branch (``orchestrate/<slug>``, ``-2`` when that name was taken)."""
    shared_branch: str
    """``orchestrate/<slug>``: the name every run of this command shares on a remote."""
    commit: str
    base: str | None
    title: str
    render: Callable[[str], Path]
    """Writes PR.md for the branch the change is published on; returns its path."""
    merge: bool = False
    merge_method: str = "merge"
