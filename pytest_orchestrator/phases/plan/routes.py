"""How the planner reaches Claude: the same environment variables Claude Code reads.

=====================  ==============================================================
route                  chosen when (first match wins)
=====================  ==============================================================
``bedrock``            ``CLAUDE_CODE_USE_BEDROCK`` is true: the SDK's `AnthropicBedrock`
                       (AWS credentials, region and profile as boto3 reads them:
                       ``AWS_REGION``, ``AWS_PROFILE``, ...; ``ANTHROPIC_BEDROCK_BASE_URL``)
``vertex``             ``CLAUDE_CODE_USE_VERTEX`` is true: the SDK's `AnthropicVertex`
                       (``ANTHROPIC_VERTEX_PROJECT_ID``, ``CLOUD_ML_REGION``, Google
                       application-default credentials; ``ANTHROPIC_VERTEX_BASE_URL``)
``api-key``            ``ANTHROPIC_API_KEY`` is set (``x-api-key``)
``auth-token``         ``ANTHROPIC_AUTH_TOKEN`` is set (``Authorization: Bearer``, for gateways)
=====================  ==============================================================

``ANTHROPIC_BASE_URL`` moves the two direct routes to a gateway or proxy. The SDK reads every
variable itself; this module only decides which client to build, and says which in one line
for the terminal header (`describe`). Bedrock model ids carry a platform prefix: an id given
without one (the default) is sent as Bedrock's global inference profile,
``global.anthropic.<id>``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import urlsplit, urlunsplit

from pytest_orchestrator.errors import ModelCallError

if TYPE_CHECKING:
    import anthropic

__all__ = ["Route", "client_for", "describe", "detect", "model_id"]

RouteName = Literal["bedrock", "vertex", "api-key", "auth-token"]
_TRUE: Final = frozenset({"1", "true", "yes", "on"})


@dataclass(frozen=True)
class Route:
    name: RouteName
    where: str
    """Endpoint, region or project, for the header (never a credential)."""


def _public(url: str) -> str:
    """``url`` without a user or password in it (a gateway URL may carry one)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


def _on(environ: Mapping[str, str], name: str) -> bool:
    return environ.get(name, "").strip().lower() in _TRUE


def detect(environ: Mapping[str, str] | None = None) -> Route | None:
    """The route the environment configures, or None (no way to reach Claude)."""
    env = os.environ if environ is None else environ
    if _on(env, "CLAUDE_CODE_USE_BEDROCK"):
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "the profile's region"
        where = _public(env.get("ANTHROPIC_BEDROCK_BASE_URL") or f"AWS {region}")
        return Route("bedrock", where)
    if _on(env, "CLAUDE_CODE_USE_VERTEX"):
        project = env.get("ANTHROPIC_VERTEX_PROJECT_ID", "?")
        region = env.get("CLOUD_ML_REGION", "?")
        where = _public(env.get("ANTHROPIC_VERTEX_BASE_URL") or f"project {project}, {region}")
        return Route("vertex", where)
    base = _public(env.get("ANTHROPIC_BASE_URL") or "api.anthropic.com")
    if env.get("ANTHROPIC_API_KEY"):
        return Route("api-key", base)
    if env.get("ANTHROPIC_AUTH_TOKEN"):
        return Route("auth-token", base)
    return None


def describe(route: Route | None) -> str:
    """One phrase for the terminal header, e.g. ``Claude via Amazon Bedrock (AWS us-east-1)``."""
    if route is None:
        return "no Claude credentials"
    names = {
        "bedrock": "Amazon Bedrock",
        "vertex": "Google Vertex AI",
        "api-key": "the Anthropic API (API key)",
        "auth-token": "the Anthropic API (bearer token)",
    }
    return f"Claude via {names[route.name]} ({route.where})"


def model_id(model: str, route: Route | None) -> str:
    """``model`` as the route names it (Bedrock ids carry ``anthropic.`` and a region)."""
    if route is not None and route.name == "bedrock" and "anthropic." not in model:
        return f"global.anthropic.{model}"
    return model


def client_for(route: Route | None, timeout: float) -> anthropic.Anthropic:
    """The SDK client of ``route``, its own retry loop off (our client retries)."""
    import anthropic

    options: dict[str, Any] = {"max_retries": 0, "timeout": timeout}
    try:
        if route is not None and route.name == "bedrock":
            from anthropic import AnthropicBedrock

            client: Any = AnthropicBedrock(**options)
        elif route is not None and route.name == "vertex":
            from anthropic import AnthropicVertex

            client = AnthropicVertex(**options)
        else:
            client = anthropic.Anthropic(**options)
    except ImportError as exc:
        extra = route.name if route is not None else "?"
        raise ModelCallError(
            f"the {extra} route needs the SDK's extra: pip install 'anthropic[{extra}]' ({exc})"
        ) from None
    except (anthropic.AnthropicError, ValueError) as exc:
        raise ModelCallError(
            f"no usable Claude credentials ({exc}): set ANTHROPIC_API_KEY or "
            "ANTHROPIC_AUTH_TOKEN, or CLAUDE_CODE_USE_BEDROCK / CLAUDE_CODE_USE_VERTEX with "
            "their cloud's credentials; or use --orchestrate-planner=rules for the commands it "
            "understands"
        ) from None
    result: anthropic.Anthropic = client
    return result
