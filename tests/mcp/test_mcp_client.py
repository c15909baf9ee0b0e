"""The MCP client against real servers: the npm filesystem server, an SDK-built one, ours."""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_orchestrator.mcp.client import (
    McpHub,
    McpServerConfig,
    hold_project_servers,
    load_mcp_servers,
)

NPM_PREFIX = Path.home() / ".cache" / "pytest-orchestrator-npm"
FS_PACKAGE = "@modelcontextprotocol/server-filesystem"

GLOSSARY_SERVER = textwrap.dedent(
    '''
    """A small server built with the mcp SDK: one read-only tool and one that writes."""
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError
    from mcp.types import ToolAnnotations

    server = MCPServer("glossary")


    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    def define(term: str) -> str:
        """Define a position-sizing term."""
        terms = {"kelly": "Kelly fraction: the stake that maximises log growth."}
        return terms.get(term, f"unknown term {term!r}")


    @server.tool()
    def delete_glossary() -> str:
        """Delete every term."""
        return "deleted"


    @server.tool()
    def fail(reason: str) -> str:
        """Always fails."""
        raise ToolError(reason)


    server.run("stdio")
    '''
)


@pytest.fixture(scope="session")
def filesystem_server() -> Path:
    """The reference filesystem server from npm, installed once into a cache outside the repo."""
    binary = NPM_PREFIX / "node_modules" / ".bin" / "mcp-server-filesystem"
    if not binary.exists():
        if shutil.which("npm") is None:
            pytest.skip("npm is not installed: the reference filesystem server needs it")
        NPM_PREFIX.mkdir(parents=True, exist_ok=True)
        with (NPM_PREFIX / ".install.lock").open("w") as lock:  # xdist workers share the cache
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not binary.exists():
                subprocess.run(
                    [
                        "npm",
                        "install",
                        "--no-audit",
                        "--no-fund",
                        "--prefix",
                        str(NPM_PREFIX),
                        FS_PACKAGE,
                    ],
                    check=True,
                    capture_output=True,
                    timeout=600,
                )
    return binary


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "sizing.py").write_text("def kelly(p, b):\n    return p - (1 - p) / b\n")
    (root / ".env").write_text("ANTHROPIC_API_KEY=sk-ant-api03-PLANTEDinWorkspace0123456789\n")
    return root


@pytest.fixture
def glossary(tmp_path: Path) -> McpServerConfig:
    script = tmp_path / "glossary_server.py"
    script.write_text(GLOSSARY_SERVER)
    return McpServerConfig("glossary", sys.executable, (str(script),))


@pytest.fixture
def hub_of(workspace: Path) -> Iterator[list[McpHub]]:
    hubs: list[McpHub] = []
    yield hubs
    for hub in hubs:
        hub.close()


def start(hubs: list[McpHub], root: Path, *servers: McpServerConfig, timeout: float = 20) -> McpHub:
    hub = McpHub.start(servers, root=root, startup_timeout=timeout)
    hubs.append(hub)
    return hub


# ---------------------------------------------------------------------------- configuration


def test_mcp_json_is_read_the_way_claude_code_writes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mcpServers entries give command, args and env, with ${VAR} and ${VAR:-default} expanded."""
    (tmp_path / ".mcp.json").write_text(
        json.dumps(
            {
                "mcpServers": {
                    "fs": {
                        "command": "npx",
                        "args": ["-y", FS_PACKAGE, "${WORKDIR:-.}"],
                        "env": {"TOKEN": "${MY_TOKEN}"},
                    },
                    "remote": {"type": "http", "url": "https://example.invalid/mcp"},
                    "broken": {"args": ["x"]},
                }
            }
        )
    )
    (fs, remote, broken) = load_mcp_servers(tmp_path, environ={"MY_TOKEN": "t0k"})
    assert (fs.name, fs.command, fs.args) == ("fs", "npx", ("-y", FS_PACKAGE, "."))
    assert dict(fs.env) == {"TOKEN": "t0k"}
    assert fs.cwd == str(tmp_path)
    assert not fs.problem
    assert "only stdio servers" in remote.problem
    assert "no 'command'" in broken.problem


def test_extra_config_files_and_a_server_allow_list(tmp_path: Path) -> None:
    """Extra files (ini/env) add or override servers; an allow-list picks some by name."""
    (tmp_path / ".mcp.json").write_text(json.dumps({"mcpServers": {"a": {"command": "x"}}}))
    extra = tmp_path / "more.json"
    extra.write_text(json.dumps({"mcpServers": {"a": {"command": "y"}, "b": {"command": "z"}}}))
    servers = load_mcp_servers(tmp_path, [extra])
    assert [(s.name, s.command) for s in servers] == [("a", "y"), ("b", "z")]
    assert [s.name for s in load_mcp_servers(tmp_path, [extra], only=["b"])] == ["b"]


def test_an_unreadable_mcp_json_is_reported_not_fatal(tmp_path: Path) -> None:
    """A broken .mcp.json becomes one reported problem."""
    (tmp_path / ".mcp.json").write_text("{not json")
    (entry,) = load_mcp_servers(tmp_path)
    assert "cannot read" in entry.problem


def test_servers_of_the_repository_are_marked_project_scoped(tmp_path: Path) -> None:
    """.mcp.json and files inside the repository are project-scoped; a file outside is not."""
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    (repo / ".mcp.json").write_text(json.dumps({"mcpServers": {"a": {"command": "x"}}}))
    (repo / "more.json").write_text(json.dumps({"mcpServers": {"b": {"command": "y"}}}))
    mine = tmp_path / "mine.json"
    mine.write_text(json.dumps({"mcpServers": {"c": {"command": "z"}}}))
    servers = load_mcp_servers(repo, ["more.json", mine])
    assert [(s.name, s.project) for s in servers] == [("a", True), ("b", True), ("c", False)]


def test_a_worktrees_main_checkout_counts_as_the_repository(tmp_path: Path) -> None:
    """A run plans in a worktree: a file of the user's checkout is still the repository's."""
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    (repo / "mcp.json").write_text(json.dumps({"mcpServers": {"a": {"command": "x"}}}))
    subprocess.run(["git", "add", "."], cwd=repo, check=True)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"],
        cwd=repo,
        check=True,
    )
    tree = tmp_path / "tree"
    subprocess.run(["git", "worktree", "add", "-q", str(tree)], cwd=repo, check=True)
    (server,) = load_mcp_servers(tree, [repo / "mcp.json"])
    assert server.project


def test_project_servers_are_held_back_without_the_opt_in() -> None:
    """Held back with one line that names them and the three ways to opt in."""
    ours = McpServerConfig("ours", command="x", project=True)
    mine = McpServerConfig("mine", command="y")
    started, report = hold_project_servers([ours, mine], opted_in=False)
    assert started == [mine]
    (line,) = report
    assert "(ours)" in line
    for way in ("--orchestrate-mcp-project", "orchestrate_mcp_project", "ORCHESTRATE_MCP_PROJECT"):
        assert way in line
    assert hold_project_servers([ours, mine], opted_in=True) == ([ours, mine], [])
    assert hold_project_servers([mine], opted_in=False) == ([mine], [])


# ---------------------------------------------------------------------------- real servers


def test_the_reference_filesystem_server_offers_read_only_tools(
    filesystem_server: Path, workspace: Path, hub_of: list[McpHub]
) -> None:
    """The npm filesystem server starts over stdio; its read tools are offered, writers are not."""
    hub = start(hub_of, workspace, McpServerConfig("fs", str(filesystem_server), (str(workspace),)))
    assert hub.servers == ["fs"]
    assert "mcp__fs__read_text_file" in hub.tools
    assert "mcp__fs__write_file" not in hub.tools
    assert any("may write were not offered" in line and "write_file" in line for line in hub.report)
    text, is_error = hub.call("mcp__fs__read_text_file", {"path": str(workspace / "pkg/sizing.py")})
    assert not is_error
    assert "def kelly(p, b):" in text
    assert hub.calls[-1]["tool"] == "read_text_file"


def test_a_tool_call_naming_a_secret_file_is_refused(
    filesystem_server: Path, workspace: Path, hub_of: list[McpHub]
) -> None:
    """Reading .env through a server is refused before the server is asked."""
    hub = start(hub_of, workspace, McpServerConfig("fs", str(filesystem_server), (str(workspace),)))
    text, is_error = hub.call("mcp__fs__read_text_file", {"path": str(workspace / ".env")})
    assert is_error
    assert "refused: .env" in text
    assert "PLANTED" not in text
    text, _ = hub.call("mcp__fs__read_multiple_files", {"paths": ["pkg/sizing.py", ".env"]})
    assert "refused" in text


def test_a_server_built_with_the_sdk(
    glossary: McpServerConfig, tmp_path: Path, hub_of: list[McpHub]
) -> None:
    """An MCPServer script works; unannotated writers are held back by name; errors are results."""
    hub = start(hub_of, tmp_path, glossary)
    assert set(hub.tools) == {"mcp__glossary__define", "mcp__glossary__fail"}
    assert hub.call("mcp__glossary__define", {"term": "kelly"}) == (
        "Kelly fraction: the stake that maximises log growth.",
        False,
    )
    text, is_error = hub.call("mcp__glossary__fail", {"reason": "on purpose"})
    assert is_error
    assert "on purpose" in text
    assert hub.call("mcp__nope__x", {}) == ("unknown tool 'mcp__nope__x'", True)


def test_tool_definitions_are_compacted_to_fit_a_budget(
    glossary: McpServerConfig, tmp_path: Path, hub_of: list[McpHub]
) -> None:
    """tool_params returns API tool definitions within the token allowance, reporting the rest."""
    hub = start(hub_of, tmp_path, glossary)
    params = hub.tool_params(10_000)
    assert [p["name"] for p in params] == ["mcp__glossary__define", "mcp__glossary__fail"]
    assert params[0]["description"].startswith("[glossary] Define a position-sizing term.")
    assert params[0]["input_schema"]["properties"]["term"]["type"] == "string"
    assert hub.tool_params(5) == []
    assert "2 MCP tools left out to fit the input budget" in hub.report[-1]


def test_servers_that_fail_to_start_are_reported_and_skipped(
    glossary: McpServerConfig, tmp_path: Path, hub_of: list[McpHub]
) -> None:
    """A missing command, a server that exits, one that never answers: reported; others work."""
    missing = McpServerConfig("missing", str(tmp_path / "no-such-server"))
    exits = McpServerConfig(
        "exits",
        sys.executable,
        ("-c", "import sys; print('bad config', file=sys.stderr); sys.exit(3)"),
    )
    silent = McpServerConfig("silent", sys.executable, ("-c", "import time; time.sleep(30)"))
    hub = start(hub_of, tmp_path, missing, exits, glossary)
    assert hub.servers == ["glossary"]
    report = "\n".join(hub.report)
    assert "'missing' failed to start" in report
    assert "'exits' failed to start" in report
    assert "bad config" in report  # the server's stderr says why
    quiet = start(hub_of, tmp_path, silent, timeout=2)
    assert quiet.servers == []
    assert "'silent' failed to start" in quiet.report[0]


def test_our_own_server_over_stdio(tmp_path: Path, hub_of: list[McpHub]) -> None:
    """python -m pytest_orchestrator.mcp serves plan_schema, validate_plan and map_slices."""
    repo = Path(__file__).resolve().parents[2]
    ours = McpServerConfig(
        "orchestrator",
        sys.executable,
        ("-m", "pytest_orchestrator.mcp"),
        env={"PYTHONPATH": str(repo)},
    )
    hub = start(hub_of, tmp_path, ours)
    assert {
        "mcp__orchestrator__map_slices",
        "mcp__orchestrator__validate_plan",
        "mcp__orchestrator__plan_schema",
    } <= set(hub.tools)
    assert "mcp__orchestrator__orchestrate" not in hub.tools  # it may write: not for planning

    schema, is_error = hub.call("mcp__orchestrator__plan_schema", {})
    assert not is_error
    assert json.loads(schema)["title"] == "pytest-orchestrator plan.json"

    good = {"command": "c", "steps": [{"id": "t", "pool": "scan", "op": "run_tests"}]}
    bad = {"command": "c", "steps": [{"id": "t", "pool": "scan", "op": "rename_symbol"}]}
    verdict, _ = hub.call("mcp__orchestrator__validate_plan", {"plan_json": json.dumps(good)})
    assert json.loads(verdict)["valid"] is True
    verdict, _ = hub.call("mcp__orchestrator__validate_plan", {"plan_json": json.dumps(bad)})
    problems = json.loads(verdict)["problems"]
    assert any("belongs in pool 'mutate'" in p["reason"] for p in problems)

    example = repo / "examples" / "wheel"
    mapped, is_error = hub.call(
        "mcp__orchestrator__map_slices",
        {"command": "Rename calculate_position_size to position_size", "root": str(example)},
    )
    assert not is_error, mapped
    kept = [s for s in json.loads(mapped)["slices"] if s["kept"]]
    assert kept[0]["symbol"] == "calculate_position_size"
    assert kept[0]["path"] == "wheel_sizing/sizing.py"


def test_our_server_reports_a_bad_root_as_the_tool_error(
    tmp_path: Path, hub_of: list[McpHub]
) -> None:
    """A mistake by the caller comes back as a tool error that says what was wrong."""
    repo = Path(__file__).resolve().parents[2]
    ours = McpServerConfig(
        "orchestrator",
        sys.executable,
        ("-m", "pytest_orchestrator.mcp"),
        env={"PYTHONPATH": str(repo)},
    )
    hub = start(hub_of, tmp_path, ours)
    text, is_error = hub.call(
        "mcp__orchestrator__map_slices", {"command": "x", "root": str(tmp_path / "missing")}
    )
    assert is_error
    assert "is not a directory" in text


def test_secret_files_outside_the_repository_are_refused_too(
    filesystem_server: Path, workspace: Path, tmp_path: Path, hub_of: list[McpHub]
) -> None:
    """A key file elsewhere (say ~/.ssh/id_rsa) is refused by name, even where a server can read."""
    outside = tmp_path / "home" / ".ssh"
    outside.mkdir(parents=True)
    (outside / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nPLANTED\n")
    fs = McpServerConfig("fs", str(filesystem_server), (str(workspace), str(tmp_path / "home")))
    hub = start(hub_of, workspace, fs)
    text, is_error = hub.call("mcp__fs__read_text_file", {"path": str(outside / "id_rsa")})
    assert is_error
    assert text.startswith("refused:")
    assert "PLANTED" not in text
