"""The orchestrator as an MCP server, so Claude Code or any MCP client can call it.

Run it over stdio with ``python -m pytest_orchestrator.mcp``; in a repository's ``.mcp.json``::

    {"mcpServers": {"orchestrator": {"command": "python",
                                     "args": ["-m", "pytest_orchestrator.mcp"]}}}

Tools (all but ``orchestrate`` are read-only):

``map_slices(command, root=".", budget_tokens=4000)``
    Map and Logic for a command: the ranked slices kept for a planner and why.
``validate_plan(plan_json)``
    Validate a plan.json text: every problem with its step id, or the parsed step count.
``plan_schema()``
    plan.json's published JSON Schema.
``orchestrate(command, root=".", dry_run=True, planner="auto", timeout_s=1800)``
    ``python -m pytest --orchestrate COMMAND`` in ``root`` (a fresh process, as a user would run
    it) and the run directory's ``run.json``. The user's checkout is never edited: the run
    works in a git worktree. ``dry_run`` stops after planning.

Nothing is written to stdout except the protocol: the orchestration's output is captured.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from pydantic import ValidationError

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

__all__ = ["build_server", "main", "map_slices", "orchestrate", "plan_schema", "validate_plan"]

SERVER_NAME: Final = "pytest-orchestrator"
RUNS: Final = Path(".orchestrate") / "runs"


def _root(root: str) -> Path:
    path = Path(root).expanduser().resolve()
    if not path.is_dir():
        raise ValueError(f"root {root!r} is not a directory")
    return path


def _tool(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Errors the caller can act on reach it as the tool's error text (others stay generic)."""
    from mcp.server.mcpserver.exceptions import ToolError

    from pytest_orchestrator.errors import OrchestratorError

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (OrchestratorError, ValueError, RuntimeError, OSError) as exc:
            raise ToolError(f"{type(exc).__name__}: {exc}") from exc

    return wrapper


def map_slices(command: str, root: str = ".", budget_tokens: int = 4000) -> dict[str, Any]:
    """Map and Logic for ``command`` under ``root``: the slices a planner would see, and why."""
    try:
        from pytest_orchestrator.phases.logic.phase import prune
        from pytest_orchestrator.phases.map.phase import map_repository
    except ImportError as exc:  # pragma: no cover - the phases ship with the package
        raise RuntimeError(f"Map/Logic are not available in this installation: {exc}") from None
    base = _root(root)
    mapped = map_repository(base, command)
    logic = prune(mapped, base, budget_tokens=budget_tokens)
    return {
        "terms": list(mapped.terms),
        "files": list(mapped.files[:50]),
        "budget_tokens": logic.budget_tokens,
        "used_tokens": logic.used_tokens,
        "slices": [
            {
                "path": r.slice.path,
                "symbol": r.slice.symbol,
                "kind": r.slice.kind,
                "lines": [r.slice.start_line, r.slice.end_line],
                "score": round(r.score, 4),
                "kept": r.kept,
                "reason": r.reason,
            }
            for r in logic.slices
        ],
        "edges": [list(e) for e in logic.edges],
    }


def validate_plan(plan_json: str) -> dict[str, Any]:
    """Validate a plan.json text as the executor would, listing every problem."""
    from pytest_orchestrator.errors import PlanValidationError
    from pytest_orchestrator.plan import Plan
    from pytest_orchestrator.plan import validate_plan as validate

    try:
        plan = Plan.model_validate_json(plan_json)
    except ValidationError as exc:
        problems = [
            {"step": "<plan>", "reason": f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}"}
            for e in exc.errors()
        ]
        return {"valid": False, "problems": problems}
    try:
        parsed = validate(plan)
    except PlanValidationError as exc:
        return {
            "valid": False,
            "problems": [{"step": s, "reason": r} for s, r in exc.problems],
        }
    return {"valid": True, "problems": [], "steps": len(parsed), "digest": plan.digest()}


def plan_schema() -> dict[str, Any]:
    """plan.json's JSON Schema (the op registry is under ``$defs.ops``)."""
    from pytest_orchestrator.plan import plan_json_schema

    return plan_json_schema()


def orchestrate(
    command: str,
    root: str = ".",
    dry_run: bool = True,
    planner: str = "auto",
    timeout_s: float = 1800.0,
) -> dict[str, Any]:
    """Run ``pytest --orchestrate COMMAND`` in ``root``; return its exit status and run.json."""
    from pytest_orchestrator.guard.proctree import Group, process_start, stop_group

    base = _root(root)
    runs = base / RUNS
    before = set(runs.iterdir()) if runs.is_dir() else set()
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "--orchestrate",
        command,
        f"--orchestrate-planner={planner}",
        "-p",
        "no:cacheprovider",
    ]
    if dry_run:
        argv.append("--orchestrate-dry-run")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTHONPATH")}
    # Its own session, so a timeout can stop the whole tree (xdist workers, Monte Carlo
    # children): subprocess.run(timeout=) would kill only the top process and orphan them.
    proc = subprocess.Popen(
        argv,
        cwd=base,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        # unreaped, so its start time is readable even if the leader has exited
        group = Group(proc.pid, process_start(proc.pid, zombie=True) or 0.0)
        stop_group(group, grace=30, leader=proc)
        proc.communicate()
        return {"exit_status": None, "error": f"the run took longer than {timeout_s:.0f}s"}
    done = subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)
    after = set(runs.iterdir()) if runs.is_dir() else set()
    new = sorted(after - before, key=lambda p: p.stat().st_mtime)
    result: dict[str, Any] = {
        "exit_status": done.returncode,
        "output_tail": "\n".join(done.stdout.splitlines()[-40:]),
    }
    if done.stderr.strip():
        result["stderr_tail"] = "\n".join(done.stderr.splitlines()[-20:])
    if new:
        run_dir = new[-1]
        result["run_dir"] = str(run_dir)
        run_json = run_dir / "run.json"
        if run_json.is_file():
            result["run"] = json.loads(run_json.read_text(encoding="utf-8"))
    return result


def build_server() -> MCPServer[Any]:
    """The MCP server with the orchestrator's tools registered."""
    from mcp.server.mcpserver import MCPServer
    from mcp.types import ToolAnnotations

    from pytest_orchestrator import __version__

    server: MCPServer[Any] = MCPServer(
        SERVER_NAME,
        version=__version__,
        instructions="Map a command onto a repository's code, validate plan.json files, and "
        "run pytest --orchestrate (dry runs by default).",
    )
    read_only = ToolAnnotations(read_only_hint=True, open_world_hint=False)
    server.tool(annotations=read_only)(_tool(map_slices))
    server.tool(annotations=read_only)(_tool(validate_plan))
    server.tool(annotations=read_only)(_tool(plan_schema))
    server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False))(
        _tool(orchestrate)
    )
    return server


def main() -> None:
    """Serve over stdio (``python -m pytest_orchestrator.mcp``; fit for a console script)."""
    build_server().run("stdio")
