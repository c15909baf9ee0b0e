"""Every way users reach Claude, end to end through the SDK's own clients and the stand-in."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_orchestrator.phases.plan.llm import LlmConfig
from pytest_orchestrator.phases.plan.planners import PlanContext, choose, describe_planner
from pytest_orchestrator.phases.plan.planners.anthropic import AnthropicPlanner
from pytest_orchestrator.phases.plan.routes import detect
from pytest_orchestrator.testing.fake_anthropic import FakeAnthropic, plan_reply
from tests.phases.plan.kelly import PLAN, kelly_context, kelly_repo

ROUTE_VARIABLES = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_BASE_URL",
    "CLAUDE_CODE_USE_BEDROCK",
    "CLAUDE_CODE_USE_VERTEX",
    "AWS_BEARER_TOKEN_BEDROCK",
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "GOOGLE_APPLICATION_CREDENTIALS",
)


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeAnthropic]:
    """The stand-in, with no route configured yet and no host credentials visible."""
    for name in ROUTE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ANTHROPIC_CONFIG_DIR", str(tmp_path / "no-profiles"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))
    with FakeAnthropic() as fake:
        yield fake


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return kelly_repo(tmp_path)


def plan(root: Path, model: str = "claude-sonnet-4-6") -> tuple[AnthropicPlanner, PlanContext]:
    ctx = kelly_context(root)
    planner = AnthropicPlanner(LlmConfig(model=model, mcp_max_tool_calls=0))
    (result,) = planner.plan(ctx)
    assert result.steps[0].op == "rename_symbol"
    return planner, ctx


def test_without_any_route_auto_is_the_rules_planner(standin: FakeAnthropic) -> None:
    assert detect() is None
    assert choose("auto") == "rules"
    assert describe_planner("auto") == "rules"


def test_a_gateway_bearer_token_alone_reaches_claude(
    standin: FakeAnthropic, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ANTHROPIC_AUTH_TOKEN without an API key: auto picks Claude; Authorization: Bearer."""
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", "gateway-token")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", standin.url)
    assert choose("auto") == "anthropic"
    assert describe_planner("auto") == (
        f"anthropic, Claude via the Anthropic API (bearer token) ({standin.url})"
    )
    standin.push(plan_reply(PLAN))
    plan(repo)
    (request,) = standin.requests
    assert request["route"] == "api"
    assert request["headers"]["authorization"] == "Bearer gateway-token"
    assert "x-api-key" not in request["headers"]


def test_amazon_bedrock(
    standin: FakeAnthropic, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CLAUDE_CODE_USE_BEDROCK: the SDK's Bedrock client, SigV4-signed, the model in the path
    as a Bedrock id; Bedrock cannot count tokens, so the estimate enforces (noted)."""
    monkeypatch.setenv("CLAUDE_CODE_USE_BEDROCK", "1")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFAKEFAKEFAKE0000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake-secret")
    monkeypatch.setenv("ANTHROPIC_BEDROCK_BASE_URL", standin.url)
    assert choose("auto") == "anthropic"
    assert "Claude via Amazon Bedrock" in describe_planner("auto")
    standin.push(plan_reply(PLAN))
    planner, ctx = plan(repo)
    (request,) = standin.requests
    assert request["route"] == "bedrock"
    assert request["path"] == "/model/global.anthropic.claude-sonnet-4-6/invoke"
    assert request["headers"]["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIAFAKE")
    assert "/eu-west-1/bedrock/" in request["headers"]["authorization"]
    assert "model" not in request.body
    assert ctx.ledger.calls[0]["budget_source"] == "estimate"
    assert any("token counting unavailable" in line for line in planner.notes)


def test_google_vertex(
    standin: FakeAnthropic, repo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """CLAUDE_CODE_USE_VERTEX: the SDK's Vertex client with Google credentials (refreshed at the
    stand-in's token endpoint), project and region in the path; tokens are counted there."""
    credentials = tmp_path / "adc.json"
    credentials.write_text(
        json.dumps(
            {
                "type": "external_account_authorized_user",
                "audience": "//iam.googleapis.com/locations/global/workforcePools/p/providers/q",
                "client_id": "id",
                "client_secret": "secret",
                "refresh_token": "refresh",
                "token_url": f"{standin.url}/token",
            }
        )
    )
    monkeypatch.setenv("CLAUDE_CODE_USE_VERTEX", "1")
    monkeypatch.setenv("ANTHROPIC_VERTEX_PROJECT_ID", "my-project")
    monkeypatch.setenv("CLOUD_ML_REGION", "us-east5")
    monkeypatch.setenv("ANTHROPIC_VERTEX_BASE_URL", f"{standin.url}/v1")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(credentials))
    assert describe_planner("auto") == (
        f"anthropic, Claude via Google Vertex AI ({standin.url}/v1)"
    )
    standin.push(plan_reply(PLAN))
    _planner, ctx = plan(repo, model="claude-opus-4-7")
    (request,) = standin.requests
    assert request["route"] == "vertex"
    assert request["path"] == (
        "/v1/projects/my-project/locations/us-east5/publishers/anthropic/models/"
        "claude-opus-4-7:rawPredict"
    )
    assert request["headers"]["authorization"] == "Bearer fake-google-token"
    assert ctx.ledger.calls[0]["budget_source"] == "count_tokens"
    assert {c["route"] for c in standin.counts} == {"vertex"}


def test_bedrock_without_its_extra_says_what_to_install(
    standin: FakeAnthropic, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK's Bedrock client imports boto3/botocore when it signs: without them, a clear
    message naming the extra, not a traceback."""
    import sys

    from pytest_orchestrator.errors import ModelCallError

    for name in ("boto3", "botocore", "botocore.auth", "botocore.awsrequest", "botocore.session"):
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setenv("CLAUDE_CODE_USE_BEDROCK", "1")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFAKEFAKEFAKE0000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake-secret")
    monkeypatch.setenv("ANTHROPIC_BEDROCK_BASE_URL", standin.url)
    standin.push(plan_reply(PLAN))
    with pytest.raises(ModelCallError, match=r"pip install 'pytest-orchestrator\[bedrock\]'"):
        plan(repo)
    assert standin.requests == []


def test_the_header_never_shows_credentials_in_a_gateway_url(standin: FakeAnthropic) -> None:
    from pytest_orchestrator.phases.plan.routes import describe

    route = detect(
        {"ANTHROPIC_AUTH_TOKEN": "t", "ANTHROPIC_BASE_URL": "https://me:s3cret@gw.example:8443/a"}
    )
    assert describe(route) == (
        "Claude via the Anthropic API (bearer token) (https://gw.example:8443/a)"
    )
