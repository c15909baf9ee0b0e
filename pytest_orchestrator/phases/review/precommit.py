"""The repository's pre-commit hooks, run on the changed files only, offline.

``pre-commit run`` would clone every remote hook repository and build every hook's
environment before running anything, from the network. So the run uses a filtered copy of
``.pre-commit-config.yaml`` holding only the hooks that need no installation: ``repo: local``
hooks of the languages that run what is already on the machine (``system``, ``script``,
``unsupported``, ``unsupported_script``, ``pygrep``, ``fail``) and pre-commit's ``meta`` hooks.
Every other hook is skipped and named with why. Its store (``PRE_COMMIT_HOME``) is in the run's
scratch directory. A hook that rewrites files (``--fix`` style) is run like any check: what it
changed is put back and each rewritten file becomes a finding (`commands.run_command`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from pytest_orchestrator.model import CheckFinding
from pytest_orchestrator.phases.review.commands import Outcome, find_executable, run_command
from pytest_orchestrator.phases.review.findings import finding, parse_located

CONFIG: Final = ".pre-commit-config.yaml"
NO_INSTALL: Final = frozenset(
    {"system", "script", "unsupported", "unsupported_script", "pygrep", "fail"}
)
_HOOK_LINE: Final = re.compile(r"^(?P<name>.+?)\.{2,}\s*\(?.*?(?P<result>Passed|Failed|Skipped)$")


@dataclass
class Hooks:
    """The hooks the filtered config keeps, and those skipped with why."""

    config: dict[str, Any] = field(default_factory=dict)
    kept: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    problem: str = ""
    """Why pre-commit cannot run at all (not installed, unreadable config)."""


def configured(root: Path) -> bool:
    return (root / CONFIG).is_file()


def select(root: Path) -> Hooks:
    """Read ``root``'s pre-commit config and keep the hooks that run offline."""
    hooks = Hooks()
    if find_executable("pre-commit") is None:
        hooks.problem = "pre-commit is not installed"
        return hooks
    try:
        import yaml
    except ImportError:
        hooks.problem = "PyYAML is not installed here, so the config cannot be read"
        return hooks
    try:
        data = yaml.safe_load((root / CONFIG).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        hooks.problem = f"{CONFIG} cannot be read: {exc}"
        return hooks
    if not isinstance(data, dict) or not isinstance(data.get("repos"), list):
        hooks.problem = f"{CONFIG} has no list of repos"
        return hooks
    repos = []
    for repo in data["repos"]:
        if not isinstance(repo, dict):
            continue
        url = str(repo.get("repo", ""))
        keep = []
        for hook in repo.get("hooks") or []:
            hid = str(hook.get("id", "?")) if isinstance(hook, dict) else "?"
            language = str(hook.get("language", "")) if isinstance(hook, dict) else ""
            if url == "meta" or (url == "local" and language in NO_INSTALL):
                keep.append(hook)
                hooks.kept.append(hid)
            elif url == "local":
                hooks.skipped.append(f"{hid} (language {language} needs an environment built)")
            else:
                hooks.skipped.append(f"{hid} (from {url}: installing it needs the network)")
        if keep:
            repos.append({**repo, "hooks": keep})
    hooks.config = {**data, "repos": repos}
    return hooks


def run(
    root: Path, hooks: Hooks, files: list[str], scratch: Path, label: str, *, timeout: float
) -> Outcome:
    """``pre-commit run`` of the kept hooks over ``files`` (those present in ``root``)."""
    import yaml

    scratch.mkdir(parents=True, exist_ok=True)
    config = scratch / f"pre-commit-{label}.yaml"
    config.write_text(yaml.safe_dump(hooks.config), encoding="utf-8")
    present = [f for f in files if (root / f).is_file()]
    argv = ["pre-commit", "run", "--config", str(config), "--color", "never", "--files", *present]
    env = {"PRE_COMMIT_HOME": str(scratch / "pre-commit-home")}
    return run_command(argv, root, scratch, label, timeout=timeout, env=env)


def parse(outcome: Outcome, root: Path) -> list[CheckFinding]:
    """Findings per failed hook: its ``path:line:`` lines, each file it rewrote, else its
    first line of output."""
    found: list[CheckFinding] = []
    blocks: list[tuple[str, list[str]]] = []
    for line in outcome.output.splitlines():
        if line.startswith("- hook id: "):
            blocks.append((line.removeprefix("- hook id: ").strip(), []))
        elif _HOOK_LINE.match(line.strip()):
            blocks.append(("", []))  # a hook's status line ends the previous hook's output
        elif blocks:
            blocks[-1][1].append(line)
    for hook, lines in blocks:
        if not hook:
            continue
        body = [x for x in lines if x.strip() and not x.startswith("- ")]
        located = parse_located("pre-commit", "\n".join(body), root, rule=hook)
        rewrote = any("files were modified by this hook" in x for x in lines)
        found += located
        if rewrote:
            found += [
                finding("pre-commit", hook, path, 0, "the hook rewrites this file (not applied)")
                for path in outcome.modified
            ]
        if not located and not rewrote:
            found.append(finding("pre-commit", hook, "", 0, body[0] if body else "failed"))
    return found
