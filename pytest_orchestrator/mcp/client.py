"""MCP servers as tools for the planner: read ``.mcp.json``, start servers, call their tools.

The configuration is the one Claude Code uses::

    {"mcpServers": {"fs": {"command": "npx",
                           "args": ["-y", "@modelcontextprotocol/server-filesystem", "."],
                           "env": {"TOKEN": "${MY_TOKEN}"}}}}

from the repository's ``.mcp.json`` plus any extra files (``ORCHESTRATE_MCP_CONFIG``);
``${VAR}`` and ``${VAR:-default}`` are expanded from the environment. Only stdio servers are
started (entries with a ``url`` are reported and skipped).

Starting a server runs a command, so a repository's own configuration — its ``.mcp.json``,
or any configuration file inside the repository — is *project-scoped* and, as in Claude Code,
starts only when the user opts in (`PROJECT_OPT_IN`); `hold_project_servers` keeps such
servers back and says how to opt in. A configuration file the user names outside the
repository is theirs and needs no opt-in.

`McpHub` starts every server over stdio with the official ``mcp`` SDK, on one event loop in a
background thread (the planner is synchronous), lists their tools, and calls them with a
timeout. A server that fails to start — a missing command, a crash, no answer to
``initialize`` in time — is reported in `McpHub.report` and skipped; it never fails the run.
Servers get only the SDK's safe default environment plus their own ``env`` block, so our
API key is not handed to them. A tool call whose arguments name a file that must not leave
(`redact.SecretFiles`) is refused before it reaches the server.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

from pytest_orchestrator.phases.plan.redact import SecretFiles, is_secret_name, redact
from pytest_orchestrator.tokens import estimate_tokens
from pytest_orchestrator.tracing import INPUT_VALUE, OUTPUT_VALUE, TOOL

if TYPE_CHECKING:
    from anyio.from_thread import BlockingPortal
    from mcp import ClientSession

    from pytest_orchestrator.tracing import Tracer

__all__ = [
    "PROJECT_OPT_IN",
    "McpHub",
    "McpServerConfig",
    "McpTool",
    "hold_project_servers",
    "load_mcp_servers",
]

STARTUP_TIMEOUT_S: Final = 20.0
CALL_TIMEOUT_S: Final = 30.0
_VAR: Final = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_NAME_OK: Final = re.compile(r"[^A-Za-z0-9_-]")
PROJECT_OPT_IN: Final = (
    "pass --orchestrate-mcp-project, set orchestrate_mcp_project = true in your ini file, "
    "or set ORCHESTRATE_MCP_PROJECT=1"
)
"""How a user opts in to the repository's own MCP servers."""


@dataclass(frozen=True)
class McpServerConfig:
    """One ``mcpServers`` entry."""

    name: str
    command: str = ""
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    problem: str = ""
    """Why this entry cannot be started (reported, then skipped)."""
    project: bool = False
    """From a configuration file inside the repository: it starts only on the user's opt-in."""


@dataclass(frozen=True)
class McpTool:
    """A tool of a started server, under the name the model sees (``mcp__server__tool``)."""

    server: str
    name: str
    qualified: str
    description: str
    input_schema: dict[str, Any]


def _expand(value: str, environ: Mapping[str, str]) -> str:
    return _VAR.sub(lambda m: environ.get(m.group(1), m.group(2) or ""), value)


def load_mcp_servers(
    root: Path,
    extra_files: Iterable[str | Path] = (),
    only: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[McpServerConfig]:
    """The servers of ``root/.mcp.json`` and ``extra_files`` (later files win), by name."""
    env = os.environ if environ is None else environ
    servers: dict[str, McpServerConfig] = {}
    projects = _project_roots(root)
    for file in [root / ".mcp.json", *(Path(f) for f in extra_files)]:
        path = file if file.is_absolute() else root / file
        if not path.is_file():
            continue
        project = _inside(path, projects)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            entries = data.get("mcpServers", {}) if isinstance(data, dict) else None
            if not isinstance(entries, dict):
                raise ValueError("it has no 'mcpServers' object")
        except (OSError, ValueError) as exc:
            servers[f"<{path.name}>"] = McpServerConfig(
                name=str(path), problem=f"cannot read {path}: {exc}", project=project
            )
            continue
        for name, raw in entries.items():
            servers[name] = replace(_server(str(name), raw, env, root), project=project)
    chosen = [s for n, s in servers.items() if only is None or n in only]
    return chosen


def hold_project_servers(
    servers: Sequence[McpServerConfig], opted_in: bool
) -> tuple[list[McpServerConfig], list[str]]:
    """The servers that may start, and a line for the run's report about those held back.

    Without the opt-in, project-scoped servers (`McpServerConfig.project`) are held back: a
    cloned repository must not run commands of its choosing on the user's machine unasked.
    """
    if opted_in:
        return list(servers), []
    held = [s.name for s in servers if s.project]
    if not held:
        return list(servers), []
    line = (
        f"MCP servers of the repository's own configuration were not started ({', '.join(held)})"
        f": project-scoped servers run commands from the repository, so they need your opt-in "
        f"— {PROJECT_OPT_IN}"
    )
    return [s for s in servers if not s.project], [line]


def _project_roots(root: Path) -> list[Path]:
    """The repository ``root`` belongs to: itself, and the main checkout of its worktree."""
    roots = [root.resolve()]
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--path-format=absolute", "--git-common-dir"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return roots
    if done.returncode == 0 and done.stdout.strip():
        common = Path(done.stdout.strip())
        if common.name == ".git":
            roots.append(common.parent.resolve())
    return roots


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    real = path.resolve()
    return any(real.is_relative_to(r) for r in roots)


def _server(name: str, raw: Any, environ: Mapping[str, str], root: Path) -> McpServerConfig:
    if not isinstance(raw, dict):
        return McpServerConfig(name, problem="its entry is not an object")
    if raw.get("url") or raw.get("type") not in (None, "stdio"):
        return McpServerConfig(name, problem="only stdio servers are supported (it has a url)")
    command = raw.get("command")
    if not isinstance(command, str) or not command:
        return McpServerConfig(name, problem="it has no 'command'")
    args = raw.get("args") or []
    env = raw.get("env") or {}
    if not isinstance(args, list) or not isinstance(env, dict):
        return McpServerConfig(name, problem="'args' must be a list and 'env' an object")
    cwd = raw.get("cwd")
    return McpServerConfig(
        name=name,
        command=_expand(command, environ),
        args=tuple(_expand(str(a), environ) for a in args),
        env={str(k): _expand(str(v), environ) for k, v in env.items()},
        cwd=str(root / _expand(cwd, environ)) if isinstance(cwd, str) else str(root),
    )


@asynccontextmanager
async def _connect(
    config: McpServerConfig, errlog: TextIO, timeout: float
) -> AsyncIterator[tuple[ClientSession, list[Any]]]:
    import anyio
    from mcp import ClientSession, StdioServerParameters, stdio_client

    params = StdioServerParameters(
        command=config.command,
        args=list(config.args),
        env=dict(config.env) or None,
        cwd=config.cwd,
    )
    async with (
        stdio_client(params, errlog=errlog) as (read, write),
        ClientSession(read, write) as session,
    ):
        with anyio.fail_after(timeout):
            await session.initialize()
            listed = await session.list_tools()
        yield session, list(listed.tools)


class McpHub:
    """Started MCP servers and their tools; `close` stops them all."""

    def __init__(self, root: Path, *, read_only: bool = True) -> None:
        self.root = root
        self.read_only = read_only
        """Offer only tools that do not write (planning); False offers every tool."""
        self.report: list[str] = []
        """One line per server that failed to start or tool that was left out."""
        self.tools: dict[str, McpTool] = {}
        self.calls: list[dict[str, Any]] = []
        """Every tool call: server, tool, arguments, is_error, size of the result."""
        self._sessions: dict[str, ClientSession] = {}
        self._stack = ExitStack()
        self._portal: BlockingPortal | None = None
        self._secrets = SecretFiles(root)

    @classmethod
    def start(
        cls,
        servers: Iterable[McpServerConfig],
        *,
        root: Path,
        startup_timeout: float = STARTUP_TIMEOUT_S,
        read_only: bool = True,
    ) -> McpHub:
        from anyio.from_thread import start_blocking_portal

        hub = cls(root, read_only=read_only)
        hub._portal = hub._stack.enter_context(start_blocking_portal())
        for server in servers:
            hub._start_one(server, startup_timeout)
        return hub

    def _start_one(self, server: McpServerConfig, timeout: float) -> None:
        if server.problem:
            self.report.append(f"MCP server {server.name!r} skipped: {server.problem}")
            return
        assert self._portal is not None
        # the server's stderr, kept for the report (a real file: the child inherits its fd)
        errlog = self._stack.enter_context(tempfile.TemporaryFile("w+", encoding="utf-8"))  # noqa: SIM115
        try:
            cm = self._portal.wrap_async_context_manager(_connect(server, errlog, timeout))
            session, tools = self._stack.enter_context(cm)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            errlog.seek(0)
            stderr = errlog.read()[-500:].strip()
            why = _describe(exc)
            self.report.append(
                f"MCP server {server.name!r} failed to start ({server.command}): {why}"
                + (f"; stderr: {stderr}" if stderr else "")
            )
            return
        self._sessions[server.name] = session
        writers = []
        for tool in tools:
            if self.read_only and _may_write(tool):
                writers.append(tool.name)
                continue
            qualified = _NAME_OK.sub("_", f"mcp__{server.name}__{tool.name}")[:64]
            self.tools[qualified] = McpTool(
                server=server.name,
                name=tool.name,
                qualified=qualified,
                description=(tool.description or "").strip(),
                input_schema=dict(tool.input_schema),
            )
        if writers:
            self.report.append(
                f"MCP server {server.name!r}: {len(writers)} tools that may write were not "
                f"offered (planning is read-only): {', '.join(writers)}"
            )

    @property
    def servers(self) -> list[str]:
        """Names of the servers that started."""
        return list(self._sessions)

    def tool_params(self, max_tokens: int) -> list[dict[str, Any]]:
        """Tool definitions for the Messages API, compacted, in order, within ``max_tokens``."""
        out: list[dict[str, Any]] = []
        used = 0
        dropped = []
        for tool in self.tools.values():
            param = {
                "name": tool.qualified,
                "description": f"[{tool.server}] " + _first_sentences(tool.description, 240),
                "input_schema": _compact_schema(tool.input_schema),
            }
            cost = estimate_tokens(json.dumps(param))
            if used + cost > max_tokens:
                dropped.append(tool.qualified)
                continue
            used += cost
            out.append(param)
        if dropped:
            self.report.append(
                f"{len(dropped)} MCP tools left out to fit the input budget: {', '.join(dropped)}"
            )
        return out

    def call(
        self,
        qualified: str,
        arguments: dict[str, Any],
        *,
        tracer: Tracer | None = None,
        timeout: float = CALL_TIMEOUT_S,
    ) -> tuple[str, bool]:
        """Call a tool; returns ``(text, is_error)`` — failures are results, never raised."""
        tool = self.tools.get(qualified)
        if tool is None:
            return f"unknown tool {qualified!r}", True
        refused = self._secret_argument(arguments)
        if refused:
            text, is_error = f"refused: {refused} must not be read into a model request", True
        else:
            text, is_error = self._call(tool, arguments, timeout)
        text = redact(text)
        self.calls.append(
            {
                "server": tool.server,
                "tool": tool.name,
                "arguments": arguments,
                "is_error": is_error,
                "chars": len(text),
            }
        )
        if tracer is not None:
            with tracer.span(
                f"mcp.{tool.server}.{tool.name}",
                kind=TOOL,
                **{
                    "tool.name": tool.name,
                    "mcp.server": tool.server,
                    INPUT_VALUE: json.dumps(arguments),
                    OUTPUT_VALUE: text[:4000],
                    "mcp.is_error": is_error,
                },
            ):
                pass
        return text, is_error

    def _call(self, tool: McpTool, arguments: dict[str, Any], timeout: float) -> tuple[str, bool]:
        assert self._portal is not None
        session = self._sessions[tool.server]

        async def run() -> Any:
            return await session.call_tool(tool.name, arguments, read_timeout_seconds=timeout)

        try:
            result = self._portal.call(run)
        except Exception as exc:
            return f"tool call failed: {_describe(exc)}", True
        parts: list[str] = []
        for block in result.content:
            kind = getattr(block, "type", "")
            if kind == "text":
                parts.append(block.text)
            else:
                parts.append(f"[{kind} content omitted]")
        if not parts and result.structured_content is not None:
            parts.append(json.dumps(result.structured_content))
        return "\n".join(parts), bool(result.is_error)

    def _secret_argument(self, arguments: Mapping[str, Any]) -> str | None:
        """A path argument that must not be read: a secret or ignored file of the repository,
        or anywhere, a file named like a secret (``~/.ssh/id_rsa``, ``~/.aws/credentials``)."""
        for value in _strings(arguments):
            candidate = Path(value).expanduser()
            path = candidate if candidate.is_absolute() else self.root / candidate
            try:
                rel = path.resolve().relative_to(self.root.resolve()).as_posix()
            except (ValueError, OSError):
                if is_secret_name(candidate.as_posix()):
                    return value
                continue
            if rel not in (".", "") and not self._secrets.allows(rel):
                return rel
        return None

    def close(self) -> None:
        """Stop every server (bounded by the SDK's shutdown) and the event loop thread."""
        self._sessions.clear()
        self._stack.close()

    def __enter__(self) -> McpHub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_WRITE_NAME: Final = re.compile(
    r"(^|_)(write|edit|move|delete|remove|create|update|set|put|push|commit|rename|exec|run)(_|$)"
)


def _may_write(tool: Any) -> bool:
    """Planning is read-only: a tool that says (or, unannotated, whose name says) it writes."""
    hints = getattr(tool, "annotations", None)
    read_only = getattr(hints, "read_only_hint", None)
    if read_only is not None:
        return not read_only
    return bool(_WRITE_NAME.search(tool.name.lower()))


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        if value and len(value) < 4096 and "\n" not in value:
            yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)


def _describe(exc: BaseException) -> str:
    """A one-line cause, unwrapping exception groups (anyio task groups raise them)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if type(exc).__name__ == "TimeoutError" and not str(exc):
        return "no answer to initialize in time"
    return f"{type(exc).__name__}: {exc}"


def _first_sentences(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit]
    return cut[: cut.rfind(". ") + 1] if ". " in cut else cut + "…"


def _compact_schema(schema: Any) -> Any:
    """A schema without titles, ``$schema`` and long descriptions (they cost tokens)."""
    if isinstance(schema, dict):
        out: dict[str, Any] = {}
        for key, value in schema.items():
            if key in ("title", "$schema", "examples"):
                continue
            if key == "description" and isinstance(value, str):
                out[key] = _first_sentences(value, 80)
            elif key == "properties" and isinstance(value, dict):
                out[key] = {k: _compact_schema(v) for k, v in value.items()}
            else:
                out[key] = _compact_schema(value)
        return out
    if isinstance(schema, list):
        return [_compact_schema(v) for v in schema]
    return schema
