"""MCP tools offered to the model during planning: a bounded, budgeted, traced tool-use loop."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_orchestrator.phases.plan.llm import LlmConfig, request_tokens
from pytest_orchestrator.phases.plan.planners import PlanContext
from pytest_orchestrator.phases.plan.planners.anthropic import AnthropicPlanner
from pytest_orchestrator.plan import Budgets
from pytest_orchestrator.testing.fake_anthropic import FakeAnthropic, plan_reply
from pytest_orchestrator.tracing import Tracer
from tests.phases.plan.kelly import kelly_context, kelly_repo

ENV_KEY = "sk-ant-api03-PLANTEDmcpPlanning0123456789abc"
SERVER = textwrap.dedent(
    '''
    from mcp.server.mcpserver import MCPServer
    from mcp.types import ToolAnnotations

    server = MCPServer("glossary")
    ro = ToolAnnotations(read_only_hint=True)


    @server.tool(annotations=ro)
    def define(term: str) -> str:
        """Define a position-sizing term."""
        return "volatility scaling: clip(target_vol / realised_vol, lo, hi)"


    @server.tool(annotations=ro)
    def dump(lines: int) -> str:
        """A long answer."""
        return "\\n".join(f"line {i}: " + "lorem ipsum dolor sit amet " * 4 for i in range(lines))


    @server.tool(annotations=ro)
    def read(path: str) -> str:
        """Read a file of the repository."""
        return open(path).read()


    server.run("stdio")
    '''
)
PLAN = [
    {
        "id": "rename",
        "pool": "mutate",
        "op": "rename_symbol",
        "args": {"symbol": "kelly", "new_name": "kelly_fraction"},
    },
    {"id": "tests", "pool": "scan", "op": "run_tests", "needs": ["rename"]},
]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = kelly_repo(tmp_path)
    (root / ".env").write_text(f"ANTHROPIC_API_KEY={ENV_KEY}\n")
    (tmp_path / "glossary.py").write_text(SERVER)
    (root / ".mcp.json").write_text(
        json.dumps(
            {
                "mcpServers": {
                    "glossary": {
                        "command": sys.executable,
                        "args": [str(tmp_path / "glossary.py")],
                    },
                    "ghost": {"command": str(tmp_path / "no-such-binary")},
                }
            }
        )
    )
    return root


def context(root: Path, **extra: object) -> PlanContext:
    return kelly_context(root, **extra)


def tool_use(name: str, **arguments: object) -> dict[str, object]:
    return {"tool_use": {"name": f"mcp__glossary__{name}", "input": arguments}}


def test_the_model_may_call_mcp_tools_before_it_plans(
    repo: Path, fake: FakeAnthropic, tmp_path: Path
) -> None:
    """Tools from .mcp.json are offered; a result goes back as tool_result; calls are traced."""
    fake.push(tool_use("define", term="vol scaling"), plan_reply(PLAN))
    tracer = Tracer(tmp_path / "trace.json")
    planner = AnthropicPlanner(LlmConfig(model="claude-sonnet-4-6", mcp_project=True))
    ctx = context(repo, tracer=tracer)
    (plan,) = planner.plan(ctx)
    tracer.shutdown()
    assert plan.steps[0].op == "rename_symbol"
    first, second = (r.body for r in fake.requests)
    assert first["tool_choice"] == {"type": "any"}
    assert [t["name"] for t in first["tools"]] == [
        "submit_plan",
        "mcp__glossary__define",
        "mcp__glossary__dump",
        "mcp__glossary__read",
    ]
    result = second["messages"][-1]["content"][0]
    assert result["type"] == "tool_result"
    assert "clip(target_vol / realised_vol, lo, hi)" in result["content"]
    assert second["messages"][1]["content"][0]["name"] == "mcp__glossary__define"
    assert any("'ghost' failed to start" in line for line in planner.notes)
    assert "MCP servers started: glossary (the repository's, opted in)" in planner.notes
    spans = json.loads((tmp_path / "trace.json").read_text())["spans"]
    (span,) = [s for s in spans if s["name"] == "mcp.glossary.define"]
    assert span["attributes"]["openinference.span.kind"] == "TOOL"
    (start,) = [s for s in spans if s["name"] == "mcp.start"]
    assert json.loads(start["attributes"]["mcp.servers"]) == ["glossary"]
    assert "'ghost' failed to start" in start["attributes"]["mcp.report"]
    assert [c["step"] for c in ctx.ledger.calls] == ["plan", "plan"]


def test_the_tool_loop_is_bounded_by_a_call_count(repo: Path, fake: FakeAnthropic) -> None:
    """After the allowed tool calls, submit_plan is forced."""
    fake.push(tool_use("define", term="a"), tool_use("define", term="b"), plan_reply(PLAN))
    AnthropicPlanner(
        LlmConfig(model="claude-sonnet-4-6", mcp_max_tool_calls=2, mcp_project=True)
    ).plan(context(repo))
    choices = [r.body["tool_choice"] for r in fake.requests]
    assert choices == [{"type": "any"}, {"type": "any"}, {"type": "tool", "name": "submit_plan"}]


def test_tool_results_are_trimmed_to_the_step_budget(repo: Path, fake: FakeAnthropic) -> None:
    """A huge tool result is cut so the next request still fits the per-step budget."""
    fake.push(tool_use("dump", lines=2000), plan_reply(PLAN))
    ctx = context(repo, budgets=Budgets(input_tokens_per_step=3000))
    AnthropicPlanner(LlmConfig(model="claude-sonnet-4-6", mcp_project=True)).plan(ctx)
    second = fake.requests[1].body
    assert request_tokens(second) <= 3000
    assert "lines omitted" in second["messages"][-1]["content"][0]["content"]


def test_secrets_cannot_be_fetched_through_a_tool(repo: Path, fake: FakeAnthropic) -> None:
    """A tool call that names .env is refused; the key never reaches the wire."""
    fake.push(tool_use("read", path=str(repo / ".env")), plan_reply(PLAN))
    AnthropicPlanner(LlmConfig(model="claude-sonnet-4-6", mcp_project=True)).plan(context(repo))
    result = fake.requests[1].body["messages"][-1]["content"][0]
    assert result["is_error"] is True
    assert "refused: .env" in result["content"]
    assert all(ENV_KEY not in r.raw for r in fake.requests)


def test_without_servers_no_tools_are_offered(tmp_path: Path, fake: FakeAnthropic) -> None:
    """No .mcp.json: the only tool is submit_plan, and it is forced."""
    fake.push(plan_reply(PLAN))
    (tmp_path / "sizing.py").write_text("def kelly(p, b):\n    return p\n")
    AnthropicPlanner(LlmConfig(model="claude-sonnet-4-6", mcp_project=True)).plan(context(tmp_path))
    body = fake.requests[0].body
    assert [t["name"] for t in body["tools"]] == ["submit_plan"]
    assert body["tool_choice"] == {"type": "tool", "name": "submit_plan"}


def test_the_repositorys_own_servers_need_an_opt_in(repo: Path, fake: FakeAnthropic) -> None:
    """Without the opt-in no server of the repository's .mcp.json starts; the run says how."""
    fake.push(plan_reply(PLAN), plan_reply(PLAN))
    planner = AnthropicPlanner(LlmConfig(model="claude-sonnet-4-6"))
    planner.plan(context(repo))
    body = fake.requests[0].body
    assert [t["name"] for t in body["tools"]] == ["submit_plan"]
    (line,) = planner.notes
    assert "were not started (glossary, ghost)" in line
    assert "--orchestrate-mcp-project" in line
    assert "orchestrate_mcp_project = true" in line
    assert "ORCHESTRATE_MCP_PROJECT=1" in line
    planner.plan(context(repo))  # a second planning of the same run ...
    assert len(planner.notes) == 1  # ... does not say it again


def test_a_config_file_the_user_names_outside_the_repository_needs_no_opt_in(
    repo: Path, fake: FakeAnthropic, tmp_path: Path
) -> None:
    """ORCHESTRATE_MCP_CONFIG pointing outside the repository is the user's own choice."""
    mine = tmp_path / "my-mcp.json"
    mine.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "mine": {"command": sys.executable, "args": [str(tmp_path / "glossary.py")]}
                }
            }
        )
    )
    fake.push(plan_reply(PLAN))
    planner = AnthropicPlanner(LlmConfig(model="claude-sonnet-4-6", mcp_config=(str(mine),)))
    planner.plan(context(repo))
    names = [t["name"] for t in fake.requests[0].body["tools"]]
    assert "mcp__mine__define" in names
    assert not any(n.startswith("mcp__glossary__") for n in names)
    assert "MCP servers started: mine" in planner.notes
    assert any("not started (glossary, ghost)" in line for line in planner.notes)


def test_a_config_file_inside_the_repository_is_project_scoped(
    repo: Path, fake: FakeAnthropic
) -> None:
    """A configuration file of the repository, named by a relative path, needs the opt-in too."""
    (repo / "tools").mkdir()
    (repo / "tools" / "mcp.json").write_text((repo / ".mcp.json").read_text())
    (repo / ".mcp.json").unlink()
    fake.push(plan_reply(PLAN))
    planner = AnthropicPlanner(LlmConfig(model="claude-sonnet-4-6", mcp_config=("tools/mcp.json",)))
    planner.plan(context(repo))
    assert [t["name"] for t in fake.requests[0].body["tools"]] == ["submit_plan"]
    assert any("not started (glossary, ghost)" in line for line in planner.notes)


def test_signed_thinking_goes_back_byte_for_byte_even_with_a_credential_in_it(
    repo: Path, fake: FakeAnthropic
) -> None:
    """With thinking on, the tool loop sends the model's signed thinking block back unchanged
    (the stand-in checks its signature) although it holds a credential-shaped string; the
    same string anywhere else in the request is redacted."""
    thought = f"The key {ENV_KEY} is in .env; I must not use it. Look up the term first."
    fake.push(
        {**tool_use("define", term=ENV_KEY), "thinking": thought, "redacted_thinking": "opaque"},
        plan_reply(PLAN),
    )
    config = LlmConfig(
        model="claude-opus-4-7", thinking_budget=2048, mcp_project=True, mcp_max_tool_calls=2
    )
    (plan,) = AnthropicPlanner(config).plan(context(repo))
    assert plan.steps[0].op == "rename_symbol"
    second = fake.requests[1]
    thinking, redacted, use = second.body["messages"][1]["content"]
    assert thinking["thinking"] == thought
    assert thinking["signature"] == fake.sign(thought)
    assert redacted["type"] == "redacted_thinking"
    assert ENV_KEY not in json.dumps(use)  # the tool call's own input is scrubbed
    assert second.raw.count(ENV_KEY) == 1  # only inside the signed block
    assert second.body["thinking"] == {"type": "adaptive"}
