"""What each Claude model accepts: its thinking form, output limit and context window.

One table, read from Anthropic's model pages (models overview, each model's "what's new"
page, and the extended/adaptive thinking guides, as of November 2026). Requests are shaped
from it (`llm.ModelClient`) and the test stand-in enforces it
(``pytest_orchestrator.testing.fake_anthropic``), so both sides agree by construction.

Thinking forms:

``adaptive``
    ``thinking: {"type": "adaptive"}``; the manual form (``enabled`` + ``budget_tokens``) is
    refused with a 400 (Opus 4.7 and later, the Sonnet 5 family, Fable) or deprecated (the
    4.6 models, which still accept it — we send the recommended form).
``enabled``
    ``thinking: {"type": "enabled", "budget_tokens": N}`` with 1024 ≤ N < ``max_tokens``.
``none``
    no thinking is sent (an id not in the table: the one form every model accepts).

Some models think unasked (``thinking_default``): the newest cannot be switched off at all
(``can_disable`` False), and then — as with any thinking — a forced ``tool_choice`` is
refused; Sonnet 5.5 and Opus 5.5 refuse forced tool use outright (``forced_tool_use``).
Where thinking cannot be switched off and none was asked for, the request lowers
``output_config.effort`` to ``low`` instead, as the model pages advise, so thinking does not
eat the 4096-token answer.

Ids are matched after taking off what the platforms add: Bedrock's region prefix
(``us.``/``eu.``/``global.`` ...), ``anthropic.`` and ``-v1:0``; Vertex's ``@date``; and a
snapshot's ``-YYYYMMDD``. An unknown id is used without thinking and without forced tool use,
with a one-line note (`lookup`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

__all__ = ["MODELS", "UNKNOWN", "ModelSpec", "base_id", "lookup"]

ThinkingForm = Literal["adaptive", "enabled", "none"]


@dataclass(frozen=True)
class ModelSpec:
    """What one model accepts (see the module docstring)."""

    id: str
    thinking: ThinkingForm
    max_output: int
    """Largest ``max_tokens`` the Messages API accepts (synchronous calls)."""
    context: int
    """Context window in tokens."""
    thinking_default: bool = False
    """The model thinks when the request does not say (``thinking`` omitted)."""
    can_disable: bool = True
    """``thinking: {"type": "disabled"}`` is accepted."""
    forced_tool_use: bool = True
    """``tool_choice`` ``any``/``tool`` is accepted (never together with thinking)."""
    accepts_enabled: bool = False
    """An ``adaptive`` model that still accepts the deprecated manual form (the 4.6 models)."""
    effort: bool = False
    """``output_config.effort`` is accepted (every adaptive model; "not supported" on the
    others): the documented way to keep thinking short where it cannot be switched off."""
    known: bool = True


_K: Final = 1_000
_M: Final = 1_000_000


def _always_on(model_id: str) -> ModelSpec:
    """Fable, Mythos 5 and Opus 5.5: adaptive thinking that cannot be switched off."""
    return ModelSpec(
        model_id,
        "adaptive",
        128 * _K,
        _M,
        thinking_default=True,
        can_disable=False,
        forced_tool_use=False,
        effort=True,
    )


MODELS: Final[dict[str, ModelSpec]] = {
    spec.id: spec
    for spec in [
        _always_on("claude-fable-5-1"),
        _always_on("claude-fable-5"),
        _always_on("claude-mythos-5"),
        _always_on("claude-opus-5-5"),
        # Sonnet 5.5: adaptive on by default, forced tool use returns an error; only up-front
        # thinking can be turned off (between_tools), so it is held to be always on here.
        _always_on("claude-sonnet-5-5"),
        # Opus 5 (and Sonnet 5, its generation): thinking on by default, may be disabled.
        ModelSpec("claude-opus-5", "adaptive", 128 * _K, _M, thinking_default=True, effort=True),
        ModelSpec("claude-sonnet-5", "adaptive", 128 * _K, _M, thinking_default=True, effort=True),
        ModelSpec("claude-opus-4-8", "adaptive", 128 * _K, _M, effort=True),
        ModelSpec("claude-opus-4-7", "adaptive", 128 * _K, _M, effort=True),
        ModelSpec(
            "claude-opus-4-6", "adaptive", 128 * _K, 200 * _K, accepts_enabled=True, effort=True
        ),
        ModelSpec(
            "claude-sonnet-4-6", "adaptive", 64 * _K, 200 * _K, accepts_enabled=True, effort=True
        ),
        ModelSpec("claude-haiku-4-5", "enabled", 64 * _K, 200 * _K),
        ModelSpec("claude-opus-4-5", "enabled", 64 * _K, 200 * _K),
        ModelSpec("claude-sonnet-4-5", "enabled", 64 * _K, 200 * _K),
        ModelSpec("claude-opus-4-1", "enabled", 32 * _K, 200 * _K),
        ModelSpec("claude-opus-4", "enabled", 32 * _K, 200 * _K),
        ModelSpec("claude-sonnet-4", "enabled", 64 * _K, 200 * _K),
    ]
}

UNKNOWN: Final = ModelSpec(
    "unknown", "none", 4096, 200 * _K, can_disable=False, forced_tool_use=False, known=False
)
"""What an id not in the table is assumed to accept: no thinking, no forced tool use, and an
output limit every model has."""

_PLATFORM: Final = re.compile(
    r"^(?:(?:us|eu|apac|jp|au|global|us-gov)\.)?(?:anthropic\.)?"  # Bedrock prefixes
    r"(?P<id>claude-[a-z0-9-]+?)"
    r"(?:-\d{8})?"  # snapshot date
    r"(?:@\d{8}|@latest)?"  # Vertex version
    r"(?:-v\d+(?::\d+)?)?$"  # Bedrock version
)


def base_id(model: str) -> str:
    """``model`` without platform prefixes, version suffixes, snapshot date or ``-0`` alias."""
    found = _PLATFORM.match(model.strip().lower())
    name = found.group("id") if found else model.strip().lower()
    return name.removesuffix("-0") if name.removesuffix("-0") in MODELS else name


def lookup(model: str) -> tuple[ModelSpec, str]:
    """The spec of ``model``, and a one-line note when it is not in the table ("" otherwise)."""
    spec = MODELS.get(base_id(model))
    if spec is not None:
        return spec, ""
    note = (
        f"model {model!r} is not in the planner's model table: it is called without thinking "
        "and without forced tool use, with max_tokens ≤ 4096"
    )
    return UNKNOWN, note
