"""Secrets never leave: what may go into a model request, and what is scrubbed from it.

Two layers, both applied by the anthropic planner:

* **Files.** `SecretFiles.allows` refuses paths matched by the repository's ``.gitignore``
  (asked of git itself, so nested ignore files and negations behave exactly as git does),
  ``.env*`` files, key and certificate files, and the usual credential stores. Such a file is
  never read into a prompt, not even its name's neighbourhood: its slices are dropped.
* **Strings.** `redact` replaces anything that looks like a credential — common token formats,
  private key blocks, ``password = "..."`` style assignments — with ``[REDACTED:<kind>]``.
  `redact_json` applies it to every string of a request body just before it is sent, so a
  secret that slipped past the file rules (a token pasted into a test, a key in a traceback)
  is still scrubbed on the wire.

Redaction errs on the side of scrubbing: a false positive costs the model a few characters of
context, a false negative leaks a credential.
"""

from __future__ import annotations

import fnmatch
import functools
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Final

__all__ = [
    "SECRET_FILE_GLOBS",
    "SecretFiles",
    "find_secrets",
    "is_secret_name",
    "redact",
    "redact_json",
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

_PATTERNS: Final[list[tuple[str, re.Pattern[str]]]] = [
    (
        "private-key",
        re.compile(
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----.*?"
            r"(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)",
            re.DOTALL,
        ),
    ),
    ("anthropic-key", re.compile(r"\bsk-ant-[A-Za-z0-9_-]{16,}")),
    ("openai-key", re.compile(r"\bsk-(?:proj-|svcacct-)?[A-Za-z0-9_-]{20,}")),
    ("github-token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})")),
    ("gitlab-token", re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}")),
    ("aws-access-key", re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b")),
    ("google-api-key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}")),
    ("slack-token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("stripe-key", re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}")),
    ("npm-token", re.compile(r"\bnpm_[A-Za-z0-9]{36}")),
    ("pypi-token", re.compile(r"\bpypi-[A-Za-z0-9_-]{50,}")),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    (
        "url-credentials",
        re.compile(r"(?<=://)[^/\s:@]{1,64}:[^/\s@]{3,128}(?=@)"),
    ),
    (
        "assigned-secret",
        # password = "hunter22", API_KEY: 'abc...', "client_secret": "..." — the value only.
        re.compile(
            r"""(?ix)
            (?<![A-Za-z0-9])
            (?:[A-Za-z0-9_]*?(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key
                |auth[_-]?token|credential|private[_-]?key)[A-Za-z0-9_]*)
            ["']?\s*[:=]\s*
            (?P<q>["'])(?P<value>[^"'\s]{8,})(?P=q)
            """
        ),
    ),
]


def is_secret_name(path: str, extra_globs: Iterable[str] = ()) -> bool:
    """True when a component of ``path`` is named like a secret (``.env``, ``id_rsa``, ...)."""
    globs = (*SECRET_FILE_GLOBS, *extra_globs)
    return any(fnmatch.fnmatch(part, g) for part in PurePosixPath(path).parts for g in globs)


def find_secrets(text: str) -> list[tuple[str, str]]:
    """Every credential-looking string in ``text`` as ``(kind, matched text)``."""
    found: list[tuple[str, str]] = []
    for kind, pattern in _PATTERNS:
        for match in pattern.finditer(text):
            value = match.group("value") if "value" in pattern.groupindex else match.group(0)
            if not _is_placeholder(value):
                found.append((kind, value))
    return found


def redact(text: str) -> str:
    """``text`` with every credential-looking string replaced by ``[REDACTED:<kind>]``."""
    for kind, pattern in _PATTERNS:
        text = pattern.sub(functools.partial(_replacement, kind=kind), text)
    return text


def _replacement(match: re.Match[str], kind: str) -> str:
    if "value" in match.re.groupindex:
        value = match.group("value")
        if _is_placeholder(value):
            return match.group(0)
        start, end = match.span("value")
        whole = match.group(0)
        offset = match.start()
        return whole[: start - offset] + f"[REDACTED:{kind}]" + whole[end - offset :]
    return f"[REDACTED:{kind}]"


def _is_placeholder(value: str) -> bool:
    """Values that are plainly not secrets: our own markers, and ``{name}``-style templates."""
    return value.startswith("[REDACTED") or (value.startswith("{") and value.endswith("}"))


def redact_json(value: Any) -> Any:
    """A copy of a JSON-like value with `redact` applied to every string (keys included)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(str(k)): redact_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_json(v) for v in value]
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
