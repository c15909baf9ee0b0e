"""Secrets never leave: what may go into a model request, and what is scrubbed from it.

Three layers, all applied by the anthropic planner:

* **Files.** `SecretFiles.allows` refuses paths matched by the repository's ``.gitignore``
  (asked of git itself, so nested ignore files and negations behave exactly as git does),
  ``.env*`` files, key and certificate files, and the usual credential stores. Such a file is
  never read into a prompt, not even its name's neighbourhood: its slices are dropped.
* **Known values.** The values of the controller's credential variables (`is_secret_env_name`:
  ``*TOKEN*``, ``*KEY*``, ``*SECRET*``, ``*PASSWORD*``, ``AWS_SECRET_ACCESS_KEY``,
  ``DATABASE_URL``, ``SLACK_*`` ...) are scrubbed by exact match, wherever they turn up — a
  failing test that prints ``os.environ["API_KEY"]`` puts it in the replan evidence verbatim,
  and no pattern can know that value. `scrub_environment` is the same rule applied to the
  environment a child process (the target's test run) is given.
* **Shapes.** `redact` replaces anything that looks like a credential — common token formats,
  private key blocks, ``password = "..."`` assignments and ``password is ...`` prose, webhook
  URLs, credentials in URLs and connection strings, ``os.getenv("API_KEY", "default")``
  defaults, bare base64 keys, and high-entropy literals of settings modules — with
  ``[REDACTED:<kind>]``. `redact_json` applies it to every string of a request body just before
  it is sent, so a secret that slipped past the file rules is still scrubbed on the wire.

Redaction errs on the side of scrubbing: a false positive costs the model a few characters of
context, a false negative leaks a credential. Two things are never rewritten: ``thinking`` and
``redacted_thinking`` blocks where the API puts them — the content of an assistant message —
(the API rejects a signed thinking block that was changed; their text is the model's own,
written from requests that were already scrubbed), and the ``type`` and ``role`` fields that
give a request its structure. A dict that merely *says* it is a thinking block anywhere else
(in a tool's input or result) is scrubbed like any other value.
"""

from __future__ import annotations

import fnmatch
import functools
import itertools
import math
import os
import re
import subprocess
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Final

__all__ = [
    "MIN_SECRET_VALUE",
    "SECRET_ENV_NAMES",
    "SECRET_FILE_GLOBS",
    "SecretFiles",
    "find_secrets",
    "is_secret_env_name",
    "is_secret_name",
    "is_settings_module",
    "redact",
    "redact_json",
    "redact_source",
    "scrub_environment",
    "secret_env_values",
    "shannon_entropy",
]

SECRET_FILE_GLOBS: Final[tuple[str, ...]] = (
    ".env",
    ".env.*",
    "*.env",
    ".envrc",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "*.asc",
    "*.gpg",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    ".netrc",
    ".pypirc",
    ".npmrc",
    ".git-credentials",
    "credentials",
    "credentials.*",
    "secrets.*",
    "*.secret",
    "*.secrets",
    "service-account*.json",
    ".mcp.json",
)
"""File names (matched against the last path component) that are never read into a request.

``.mcp.json`` is here because its ``env`` blocks routinely hold tokens for the servers.
"""

# ---------------------------------------------------------------------------- environment

SECRET_ENV_WORDS: Final = (
    "TOKEN",
    "KEY",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "CREDENTIAL",
    "AUTH",
    "PRIVATE",
)
"""A variable whose name contains one of these (any case) holds a credential."""

SECRET_ENV_NAMES: Final[tuple[str, ...]] = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "OPENAI_API_KEY",
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "GH_ENTERPRISE_TOKEN",
    "GITLAB_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "AZURE_*",
    "SLACK_*",
    "DISCORD_*",
    "STRIPE_*",
    "TWILIO_*",
    "SENDGRID_*",
    "*WEBHOOK*",
    "DATABASE_URL",
    "*_DATABASE_URL",
    "REDIS_URL",
    "MONGODB_URI",
    "MONGO_URL",
    "AMQP_URL",
    "CELERY_BROKER_URL",
    "*_DSN",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "NPM_TOKEN",
    "TWINE_PASSWORD",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_*_HEADERS",
    "*_PAT",
)
"""Known providers' variables (globs, any case) that hold credentials whatever their name."""

NOT_SECRET_ENV_NAMES: Final[tuple[str, ...]] = (
    "*AUTHOR*",  # GIT_AUTHOR_NAME: "auth" by accident
    "*TOKENS",  # MAX_TOKENS, ORCHESTRATE_MAX_RUN_TOKENS: counts, not tokens
    "TOKENIZERS_*",
    "*KEYBOARD*",
    "*KEYMAP*",
)
"""Names the word rule would catch that are plainly settings (a known name still wins)."""

MIN_SECRET_VALUE: Final = 6
"""Shorter values are not scrubbed by exact match: ``1``, ``true`` or ``eu`` would hit
everything (the shape rules still apply to them)."""

_ENV_MARK: Final = "[REDACTED:env]"


@functools.cache
def is_secret_env_name(name: str) -> bool:
    """True when the environment variable ``name`` holds a credential (any case). Cached:
    `redact` asks about every variable for every text, and Review redacts each of a linter's
    findings (thousands on a large tree: ~3.7 CPU-s of a warm pygments run, uncached)."""
    upper = name.upper()
    if any(fnmatch.fnmatchcase(upper, glob) for glob in SECRET_ENV_NAMES):
        return True
    if any(fnmatch.fnmatchcase(upper, glob) for glob in NOT_SECRET_ENV_NAMES):
        return False
    return any(word in upper for word in SECRET_ENV_WORDS)


def secret_env_values(environ: Mapping[str, str]) -> list[str]:
    """The values of ``environ``'s credential variables to scrub, longest first.

    Each value is taken as is and stripped; a multi-line value (a key or a JSON credential)
    also gives its long lines, since a test may print one line of it. Values shorter than
    `MIN_SECRET_VALUE`, and parts of our own marker, are left out.
    """
    values: set[str] = set()
    for name, value in environ.items():
        if not is_secret_env_name(name):
            continue
        values.update((value, value.strip()))
        if "\n" in value:
            values.update(line.strip() for line in value.splitlines() if len(line.strip()) >= 16)
    kept = {v for v in values if len(v) >= MIN_SECRET_VALUE and v not in _ENV_MARK}
    return sorted(kept, key=lambda v: (-len(v), v))


def scrub_environment(environ: Mapping[str, str], allow: Iterable[str] = ()) -> dict[str, str]:
    """A copy of ``environ`` without its credential variables (`is_secret_env_name`).

    ``allow`` lists names (fnmatch globs, any case) that are kept anyway — a test suite that
    really needs ``GITHUB_TOKEN`` says so. ``PATH``, ``HOME``, ``LANG`` and the like stay.
    """
    allowed = [glob.upper() for glob in allow]
    return {
        name: value
        for name, value in environ.items()
        if not is_secret_env_name(name)
        or any(fnmatch.fnmatchcase(name.upper(), glob) for glob in allowed)
    }


def _scrub_values(text: str, values: Iterable[str]) -> str:
    """``text`` with every occurrence of ``values`` replaced, until none is left.

    Occurrences are found in the original text and merged where they overlap or touch, so
    one marker replaces a run of secrets; a value that only appears once a marker sits next
    to text is caught by the next round (each round shrinks the unmarked text, so it ends).
    """
    values = [v for v in values if v]
    while True:
        spans: list[tuple[int, int]] = []
        for value in values:
            start = text.find(value)
            while start != -1:
                spans.append((start, start + len(value)))
                start = text.find(value, start + 1)
        if not spans:
            return text
        spans.sort()
        merged = [spans[0]]
        for start, end in spans[1:]:
            if start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        out, last = [], 0
        for start, end in merged:
            out += [text[last:start], _ENV_MARK]
            last = end
        out.append(text[last:])
        text = "".join(out)


# ---------------------------------------------------------------------------- entropy


def shannon_entropy(text: str) -> float:
    """Bits per character of ``text`` (0 for an empty or one-symbol string)."""
    if not text:
        return 0.0
    counts = Counter(text)
    size = len(text)
    return -sum(n / size * math.log2(n / size) for n in counts.values())


_HEX: Final = re.compile(r"[0-9a-fA-F]+")


def _high_entropy(value: str) -> bool:
    """A literal that looks random: ≥ 20 characters, hex or base64-like, and high entropy.

    The entropy bar scales with the length (a short string cannot have many distinct
    symbols): random hex reaches about 3.7 bits per character, random base64 about 5. Names
    are told apart by how rarely they switch between upper case, lower case, digits and the
    rest (``subjectKeyIdentifier``, ``BetaTool20250910``): random base64 switches at about
    two characters in three.
    """
    if len(value) < 20 or any(c.isspace() for c in value):
        return False
    entropy = shannon_entropy(value)
    if _HEX.fullmatch(value):
        return entropy >= 3.0 and any(c.isdigit() for c in value) and not value.isdigit()
    return _switches(value) >= 0.4 and entropy >= min(4.0, 0.8 * math.log2(len(value)))


def _switches(value: str) -> float:
    """How often consecutive characters change class (upper, lower, digit, other), 0..1."""

    def kind(c: str) -> int:
        return 0 if c.isupper() else 1 if c.islower() else 2 if c.isdigit() else 3

    kinds = [kind(c) for c in value]
    return sum(a != b for a, b in itertools.pairwise(kinds)) / max(1, len(value) - 1)


_KEY_LENGTHS: Final = frozenset({22, 24, 32, 43, 44, 64, 86, 88})
"""Base64 lengths of 16-, 24-, 32-, 48- and 64-byte keys, with and without padding."""


def _bare_key(match: re.Match[str]) -> bool:
    """A bare base64 token of a key's length, with digits, random-looking (`_high_entropy`).

    Bare hex is left alone: a 32- or 40-digit hex string is a checksum or a commit far more
    often than a key (assigned to a key's name, or in a settings module, it still goes)."""
    value = match.group("value")
    return (
        len(value) in _KEY_LENGTHS
        and any(c.isdigit() for c in value)
        and not _HEX.fullmatch(value)
        and _high_entropy(value)
    )


# ---------------------------------------------------------------------------- shapes

_STOPWORDS: Final = frozenset(
    {
        "absent",
        "accepted",
        "already",
        "always",
        "available",
        "cached",
        "changed",
        "checked",
        "compromised",
        "configured",
        "correct",
        "created",
        "defined",
        "deleted",
        "deprecated",
        "different",
        "disabled",
        "empty",
        "enabled",
        "encrypted",
        "expired",
        "falsy",
        "generated",
        "hashed",
        "hidden",
        "ignored",
        "incorrect",
        "insecure",
        "integer",
        "invalid",
        "leaked",
        "loaded",
        "longer",
        "malformed",
        "mandatory",
        "masked",
        "missing",
        "needed",
        "number",
        "object",
        "optional",
        "passed",
        "present",
        "private",
        "provided",
        "public",
        "random",
        "redacted",
        "rejected",
        "removed",
        "required",
        "returned",
        "revoked",
        "rotated",
        "saved",
        "secret",
        "secure",
        "sensitive",
        "shorter",
        "signed",
        "specified",
        "stolen",
        "stored",
        "string",
        "strong",
        "supplied",
        "truthy",
        "unavailable",
        "unique",
        "unknown",
        "unset",
        "updated",
        "usually",
        "validated",
        "verified",
        "visible",
        "wrong",
    }
)


def _prose(match: re.Match[str]) -> bool:
    """``password is X``/``my token: X``: X is not a state word (``required``, ``expired``).

    Said of one's own (``my password is swordfish``) or quoted, any word counts; otherwise only
    a value with a digit or a symbol, since code and comments say ``token = get_token`` and
    ``the token is attached per request``.
    """
    value = match.group("value")
    if len(value) < MIN_SECRET_VALUE or value.lower() in _STOPWORDS:
        return False
    if match.group("poss") or match.group("pq"):
        return True
    return any(not (c.isalpha() or c in "_.") for c in value)


def _prose_loose(match: re.Match[str]) -> bool:
    """In the user's command any non-state word after ``password is`` is taken for one."""
    value = match.group("value")
    return len(value) >= MIN_SECRET_VALUE and value.lower() not in _STOPWORDS


def _keyish_value(match: re.Match[str]) -> bool:
    """A random-looking value; unquoted, it needs a digit (else it is a name in code)."""
    value = match.group("value")
    return (bool(match.group("q")) or any(c.isdigit() for c in value)) and _high_entropy(value)


def _env_default(match: re.Match[str]) -> bool:
    """An ``os.getenv`` default when the variable holds a credential or the default looks random."""
    return is_secret_env_name(match.group("name")) or _high_entropy(match.group("value"))


def _entropy_value(match: re.Match[str]) -> bool:
    return _high_entropy(match.group("value"))


_SECRET_NAME: Final = r"""
    [A-Za-z0-9_]*?(?:password|passwd|pwd|passphrase|secret|token|api[_-]?key|access[_-]?key
    |auth[_-]?token|credential|private[_-]?key)[A-Za-z0-9_]*"""
_KEYISH_NAME: Final = r"""
    [A-Za-z0-9_]*?(?:key|token|secret|passw(?:or)?d|pwd|credential|auth|private|salt|signing
    |hmac|dsn|cert)[A-Za-z0-9_]*"""
_PROSE_NAME: Final = r"""
    pass(?:word|wd|phrase)|pwd|secret|token|api[\s_-]?key|access[\s_-]?key
    |private[\s_-]?key|credentials?|auth[\s_-]?token"""
_BARE: Final = r"[^\s\"'`()\[\]{}<>,;]"
"""A character of an unquoted value in prose: not a quote, bracket or separator."""


_PROSE: Final = re.compile(
    # "my password is hunter2!", "the API token: abc123", "secret = s3cr3t-x" in a message
    rf"""(?ix)
    (?<![A-Za-z0-9_])
    (?P<poss>\b(?:my|our|your)\s+(?:[a-z]+\s+)?)?
    (?:{_PROSE_NAME})s?
    \s*(?:is|was|:|=)\s*(?:set\s+to\s+|now\s+)?(?P<pq>["'`])?
    (?P<value>{_BARE}*[^\s"'`()\[\]{{}}<>,;.:!?])
    (?=[.:!?]*(?:[\s"'`)\]}}>,;]|$))
    """
)


@dataclass(frozen=True)
class _Rule:
    """One credential shape: the whole match is replaced, or only its ``value`` group;
    ``check`` (given the match) may veto a match that only looks the part."""

    kind: str
    pattern: re.Pattern[str]
    check: Callable[[re.Match[str]], bool] | None = None


_RULES: Final[list[_Rule]] = [
    _Rule(
        "private-key",
        re.compile(
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----.*?"
            r"(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)",
            re.DOTALL,
        ),
    ),
    _Rule("anthropic-key", re.compile(r"\bsk-ant-[A-Za-z0-9_-]{16,}")),
    _Rule("openai-key", re.compile(r"\bsk-(?:proj-|svcacct-)?[A-Za-z0-9_-]{20,}")),
    _Rule(
        "github-token",
        re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})"),
    ),
    _Rule("gitlab-token", re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}")),
    _Rule("aws-access-key", re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b")),
    _Rule("google-api-key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}")),
    _Rule("slack-token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    _Rule("stripe-key", re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}")),
    _Rule("npm-token", re.compile(r"\bnpm_[A-Za-z0-9]{36}")),
    _Rule("pypi-token", re.compile(r"\bpypi-[A-Za-z0-9_-]{50,}")),
    _Rule("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    _Rule(
        "slack-webhook",
        re.compile(
            r"hooks\.slack(?:-gov)?\.com/(?:services|workflows|triggers)/"
            r"(?P<value>[A-Za-z0-9_/-]+)"
        ),
    ),
    _Rule(
        "discord-webhook",
        re.compile(r"discord(?:app)?\.com/api/(?:v\d+/)?webhooks/(?P<value>[0-9]+/[A-Za-z0-9_-]+)"),
    ),
    _Rule("teams-webhook", re.compile(r"webhook\.office\.com/(?P<value>[^\s\"'<>]+)")),
    _Rule(
        "url-query-secret",
        re.compile(
            r"(?i)[?&](?:access_token|token|api[_-]?key|key|secret|sig|signature|password"
            r"|auth|code)=(?P<value>[^&\s#\"'<>]{6,})"
        ),
    ),
    _Rule(
        "url-credentials",
        # scheme://user:password@host — postgres://, mongodb+srv://, redis://:pw@, amqp://
        re.compile(r"(?<=://)(?P<value>[^/\s:@\"'<>]{0,64}:[^\s/\"'<>]{1,128})(?=@[^\s/@\"'<>]+)"),
    ),
    _Rule(
        "connection-string",
        # Server=...;Password=...; (ADO.NET, ODBC, Azure storage): the value ends at ";"
        re.compile(
            r"(?i)(?:^|[;\"'])\s*(?:password|pwd|accountkey|sharedaccesskey"
            r"|sharedaccesssignature)\s*=\s*(?P<value>[^;\"'\r\n]+);"
        ),
    ),
    _Rule(
        "connection-string",
        re.compile(
            r"(?i)\b(?:server|data\ssource|host|address|endpoint|accountname|driver)\s*=[^;\r\n]*;"
            r"(?:[^;\r\n]*;)*?\s*(?:password|pwd|accountkey|sharedaccesskey)\s*=\s*"
            r"(?P<value>[^;\"'\r\n]+)"
        ),
    ),
    _Rule(
        "env-default",
        # os.environ.get("API_KEY", "fallback") / os.getenv(...): the default only
        re.compile(
            r"""\b(?:environ\.get|environ\.setdefault|getenv)\(\s*(?P<nq>["'])(?P<name>[^"'\n]+)
            (?P=nq)\s*,\s*(?P<q>["'])(?P<value>[^"'\n]+)(?P=q)""",
            re.VERBOSE,
        ),
        _env_default,
    ),
    _Rule(
        "assigned-secret",
        # password = "hunter22", API_KEY: 'abc...', "client_secret": "..." — the value only.
        re.compile(
            rf"""(?ix)
            (?<![A-Za-z0-9])(?:{_SECRET_NAME})
            ["']?\s*[:=]\s*
            (?P<q>["'])(?P<value>[^"'\s]{{8,}})(?P=q)
            """
        ),
    ),
    _Rule(
        "high-entropy",
        # SIGNING_KEY = "3q2+7w...", SALT=9f86d0..., "hmac": "..." — a random-looking value
        re.compile(
            rf"""(?ix)
            (?<![A-Za-z0-9])(?:{_KEYISH_NAME})
            ["']?\s*[:=]\s*
            (?P<q>["']?)(?P<value>[A-Za-z0-9+/=_.~-]{{20,}})(?P=q)(?![A-Za-z0-9+/=_.~-])
            """
        ),
        _keyish_value,
    ),
    _Rule("prose-secret", _PROSE, _prose),
    _Rule(
        "base64-key",
        re.compile(
            r"(?<![A-Za-z0-9+/=_-])(?P<value>[A-Za-z0-9+/]{20,}={0,2}|[A-Za-z0-9_-]{20,}={0,2})"
            r"(?![A-Za-z0-9+/=_-])"
        ),
        _bare_key,
    ),
]

_SETTINGS_LITERAL: Final = _Rule(
    "settings-literal",
    re.compile(r"""(?P<q>["'])(?P<value>[^"'\s]{20,})(?P=q)"""),
    _entropy_value,
)
"""In a settings module every random-looking string literal is taken for a credential."""

_COMMAND_PROSE: Final = _Rule("prose-secret", _PROSE, _prose_loose)
_COMMAND_LINE: Final = re.compile(r"^Command: [^\n]*", re.MULTILINE)
"""The user's sentence as the prompts show it; prose there is held to the looser rule."""

_SETTINGS_GLOBS: Final = (
    "settings.py",
    "*_settings.py",
    "settings_*.py",
    "config.py",
    "*_config.py",
    "settings.*",
    "config.*",
)
_SETTINGS_DIRS: Final = frozenset({"conf", "config", "configs", "settings"})
_HEADED_BLOCK: Final = re.compile(
    r"^### (?P<path>[^\s:]+)(?:::[^\n]*)?\n```[^\n]*\n(?P<body>.*?)(?=^```|\Z)",
    re.MULTILINE | re.DOTALL,
)
"""A file's text as the prompts show it: ``### path::symbol`` then a fenced block."""


def is_settings_module(path: str) -> bool:
    """True for ``settings.py``, ``config.py``, ``*_settings.py``, files under ``conf/`` ..."""
    parts = PurePosixPath(path).parts
    if not parts:
        return False
    name = parts[-1].lower()
    if any(fnmatch.fnmatchcase(name, glob) for glob in _SETTINGS_GLOBS):
        return True
    return any(part.lower() in _SETTINGS_DIRS for part in parts[:-1])


def is_secret_name(path: str, extra_globs: Iterable[str] = ()) -> bool:
    """True when a component of ``path`` is named like a secret (``.env``, ``id_rsa``, ...)."""
    globs = (*SECRET_FILE_GLOBS, *extra_globs)
    return any(fnmatch.fnmatch(part, g) for part in PurePosixPath(path).parts for g in globs)


def _matches(rule: _Rule, text: str) -> Iterable[str]:
    for match in rule.pattern.finditer(text):
        value = match.group("value") if "value" in rule.pattern.groupindex else match.group(0)
        if not _is_placeholder(value) and (rule.check is None or rule.check(match)):
            yield value


def find_secrets(text: str) -> list[tuple[str, str]]:
    """Every credential-looking string in ``text`` as ``(kind, matched text)`` (shapes only)."""
    return [(rule.kind, value) for rule in _RULES for value in _matches(rule, text)]


def redact(text: str, secrets: Iterable[str] | None = None) -> str:
    """``text`` with every credential replaced by ``[REDACTED:<kind>]``.

    ``secrets`` are exact values to scrub as well; by default those of the process
    environment (`secret_env_values`). A fenced block headed ``### <settings module>`` (how
    the prompts show a file) also loses its random-looking literals, as in `redact_source`.
    """
    return _redact(text, _values(secrets), settings=False)


def redact_source(path: str, text: str, secrets: Iterable[str] | None = None) -> str:
    """`redact` for the text of the file ``path``: in a settings module (`is_settings_module`)
    every high-entropy string literal goes too, whatever it is assigned to."""
    return _redact(text, _values(secrets), settings=is_settings_module(path))


def _values(secrets: Iterable[str] | None) -> list[str]:
    return secret_env_values(os.environ) if secrets is None else list(secrets)


def _redact(text: str, values: list[str], *, settings: bool) -> str:
    for rule in _RULES:
        text = _apply(rule, text)
    if settings:
        text = _apply(_SETTINGS_LITERAL, text)
    text = _HEADED_BLOCK.sub(_redact_headed_block, text)
    text = _COMMAND_LINE.sub(lambda m: _apply(_COMMAND_PROSE, m.group(0)), text)
    return _scrub_values(text, values)  # last: nothing after it may bring a value back


def _redact_headed_block(match: re.Match[str]) -> str:
    if not is_settings_module(match.group("path")):
        return match.group(0)
    start = match.start("body") - match.start()
    whole = match.group(0)
    return whole[:start] + _apply(_SETTINGS_LITERAL, match.group("body"))


def _settings_literals(text: str) -> Iterable[str]:
    """The values `redact` would take out of the settings blocks of ``text``."""
    for block in _HEADED_BLOCK.finditer(text):
        if is_settings_module(block.group("path")):
            yield from _matches(_SETTINGS_LITERAL, block.group("body"))


def _apply(rule: _Rule, text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        if "value" not in rule.pattern.groupindex:
            return (
                match.group(0)
                if rule.check and not rule.check(match)
                else f"[REDACTED:{rule.kind}]"
            )
        value = match.group("value")
        if _is_placeholder(value) or (rule.check is not None and not rule.check(match)):
            return match.group(0)
        start, end = match.span("value")
        whole, offset = match.group(0), match.start()
        return whole[: start - offset] + f"[REDACTED:{rule.kind}]" + whole[end - offset :]

    return rule.pattern.sub(replace, text)


def _is_placeholder(value: str) -> bool:
    """Values that are plainly not secrets: our own markers, and ``{name}``-style templates."""
    return (
        value.startswith("[REDACTED")
        or "[REDACTED:" in value
        or (value.startswith(("{", "${")) and value.endswith("}"))
    )


_THINKING: Final = frozenset({"thinking", "redacted_thinking"})
_STRUCTURE: Final = frozenset({"type", "role"})


def redact_json(value: Any, secrets: Iterable[str] | None = None) -> Any:
    """A copy of a JSON-like value with `redact` applied to every string (keys included).

    Signed thinking blocks of assistant messages are kept as they are, and ``type``/``role``
    values are only checked against the shapes (an environment value that happens to read
    ``object`` must not break a tool's schema). Literals taken out of a settings module
    anywhere in the body are scrubbed from every other string of it too (an edit's "nearest
    match" note quotes the same file).
    """
    values = _values(secrets)
    found = sorted(set(_settings_literals_json(value)), key=lambda v: (-len(v), v))
    return _redact_json(value, [*values, *found])


def _signed(value: Any, parent: Any) -> bool:
    """A thinking block as the API returns it: a content block of an assistant message."""
    return (
        isinstance(value, dict)
        and value.get("type") in _THINKING
        and isinstance(parent, dict)
        and parent.get("role") == "assistant"
    )


def _settings_literals_json(value: Any, parent: Any = None) -> Iterable[str]:
    if isinstance(value, str):
        yield from _settings_literals(value)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _settings_literals_json(item, value)
    elif isinstance(value, list | tuple):
        for item in value:
            if not _signed(item, parent):
                yield from _settings_literals_json(item)


def _redact_json(value: Any, values: list[str], parent: Any = None) -> Any:
    """``parent``: the message whose ``content`` list ``value`` is (signed blocks live there)."""
    if isinstance(value, str):
        return redact(value, values)
    if isinstance(value, dict):
        return {
            redact(str(k), values): (
                redact(v, ())
                if k in _STRUCTURE and isinstance(v, str)
                else _redact_json(v, values, value if k == "content" else None)
            )
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [dict(v) if _signed(v, parent) else _redact_json(v, values) for v in value]
    return value


@dataclass
class SecretFiles:
    """Decides which repository files may be read into a request.

    ``root`` is the repository (or worktree) root. Ignored files are asked of
    ``git check-ignore`` once per path and cached; outside a git repository the root
    ``.gitignore`` is read with a simplified matcher (fnmatch per line, no negations).
    """

    root: Path
    extra_globs: tuple[str, ...] = ()
    _cache: dict[str, bool] = field(default_factory=dict, repr=False)

    def allows(self, path: str) -> bool:
        """True when ``path`` (relative to the root, POSIX) may be put into a request."""
        if path not in self._cache:
            self._cache[path] = not (self._secret_name(path) or self._ignored([path])[path])
        return self._cache[path]

    def filter(self, paths: Iterable[str]) -> list[str]:
        """The allowed subset of ``paths``, in order (one git call for the whole batch)."""
        paths = list(paths)
        todo = [p for p in paths if p not in self._cache]
        if todo:
            ignored = self._ignored([p for p in todo if not self._secret_name(p)])
            for p in todo:
                self._cache[p] = not (self._secret_name(p) or ignored.get(p, False))
        return [p for p in paths if self._cache[p]]

    def _secret_name(self, path: str) -> bool:
        return is_secret_name(path, self.extra_globs)

    def _ignored(self, paths: list[str]) -> dict[str, bool]:
        if not paths:
            return {}
        try:
            done = subprocess.run(
                ["git", "check-ignore", "--no-index", "--stdin", "-z"],
                cwd=self.root,
                input="\0".join(paths) + "\0",
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            done = None
        if done is not None and done.returncode in (0, 1):  # 1: nothing ignored
            hits = set(filter(None, done.stdout.split("\0")))
            return {p: p in hits for p in paths}
        return {p: self._ignored_by_file(p) for p in paths}

    def _ignored_by_file(self, path: str) -> bool:
        try:
            lines = (self.root / ".gitignore").read_text(encoding="utf-8").splitlines()
        except OSError:
            return False
        parts = PurePosixPath(path).parts
        for raw in lines:
            line = raw.strip()
            if not line or line.startswith(("#", "!")):
                continue
            pattern = line.strip("/")
            if fnmatch.fnmatch(path, pattern) or any(fnmatch.fnmatch(p, pattern) for p in parts):
                return True
        return False
