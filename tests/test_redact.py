"""Secrets never leave: which files may be read into a request, and what strings are scrubbed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_orchestrator.redact import SecretFiles, find_secrets, redact, redact_json

PLANTED = {
    "anthropic-key": "sk-ant-api03-" + "A1b2C3d4" * 5,
    "openai-key": "sk-proj-" + "Zy9" * 10,
    "github-token": "ghp_" + "x" * 36,
    "aws-access-key": "AKIAIOSFODNN7EXAMPLE",
    "google-api-key": "AIza" + "S" * 35,
    "slack-token": "xoxb-123456789012-abcdefghij",
    "stripe-key": "sk_live_" + "4" * 24,
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ",
}
PRIVATE_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAA\n"
    "-----END OPENSSH PRIVATE KEY-----"
)


@pytest.mark.parametrize(("kind", "secret"), sorted(PLANTED.items()))
def test_common_token_formats_are_redacted(kind: str, secret: str) -> None:
    """Each common credential format is replaced wherever it appears in a text."""
    text = f"config = load()\nvalue: {secret} # from the vault\n"
    scrubbed = redact(text)
    assert secret not in scrubbed
    assert "[REDACTED:" in scrubbed
    assert "config = load()" in scrubbed
    assert kind in {k for k, _ in find_secrets(text)}


def test_private_key_blocks_are_redacted_whole() -> None:
    """A PEM/OpenSSH private key block disappears, header to footer."""
    scrubbed = redact(f"key = '''\n{PRIVATE_KEY}\n'''")
    assert "b3BlbnNzaC1rZXktdjEAAAA" not in scrubbed
    assert "BEGIN OPENSSH PRIVATE KEY" not in scrubbed
    assert "[REDACTED:private-key]" in scrubbed


@pytest.mark.parametrize(
    "line",
    [
        'password = "correct-horse-battery"',
        "API_KEY: 'abcdefgh12345678'",
        '{"client_secret": "s3cr3t-value-here"}',
        "DB_PASSWD='hunter2hunter2'",
    ],
)
def test_assigned_secrets_lose_their_value_not_their_name(line: str) -> None:
    """``password = "..."``-style assignments keep the name (useful context), not the value."""
    scrubbed = redact(line)
    assert "[REDACTED:assigned-secret]" in scrubbed
    assert scrubbed.split("[REDACTED")[0].strip(" :=\"'{")  # the name survives


def test_credentials_in_urls_are_redacted() -> None:
    """user:password@host in a URL loses the user and password."""
    assert redact("git clone https://bob:pa55word@example.com/r.git") == (
        "git clone https://[REDACTED:url-credentials]@example.com/r.git"
    )


@pytest.mark.parametrize(
    "text",
    [
        "token_count = estimate_tokens(text)",
        'password = ""',
        "author = 'Jane Doe'",
        "max_tokens: 4096",
        'api_key = "{ANTHROPIC_API_KEY}"',
        "def skip_secret(): ...",
    ],
)
def test_ordinary_code_is_left_alone(text: str) -> None:
    """Code that merely talks about tokens or passwords is not mangled."""
    assert redact(text) == text


def test_redact_json_scrubs_every_string_of_a_request() -> None:
    """Nested messages, tool inputs and keys are all scrubbed; numbers and structure stay."""
    secret = PLANTED["github-token"]
    body = {
        "messages": [{"role": "user", "content": [{"type": "text", "text": secret}]}],
        "max_tokens": 10,
        secret: [secret, 1.5, None],
    }
    scrubbed = redact_json(body)
    assert secret not in repr(scrubbed)
    assert scrubbed["max_tokens"] == 10
    assert scrubbed["messages"][0]["content"][0]["type"] == "text"


@given(
    before=st.text(max_size=40),
    after=st.text(max_size=40),
    secret=st.sampled_from(sorted(PLANTED.values())),
)
def test_redaction_removes_planted_secrets_from_any_text(
    before: str, after: str, secret: str
) -> None:
    """Whatever surrounds a planted secret, it does not survive; redacting twice changes nothing."""
    text = f"{before} {secret} {after}"
    once = redact(text)
    assert secret not in once
    assert redact(once) == once


# ---------------------------------------------------------------------------- files


def test_secret_file_names_are_refused(tmp_path: Path) -> None:
    """.env*, key files and credential stores are never read, wherever they live."""
    files = SecretFiles(tmp_path)
    refused = [
        ".env",
        ".env.local",
        "config/prod.env",
        "deploy/id_rsa",
        "certs/server.pem",
        "tls/server.key",
        ".netrc",
        ".pypirc",
        "home/.git-credentials",
        ".mcp.json",
        "secrets.yaml",
        "aws/credentials",
    ]
    allowed = ["pkg/sizing.py", "README.md", "tests/test_env.py", "docs/keys.md", "environment.yml"]
    assert files.filter(refused + allowed) == allowed


def test_gitignored_files_are_refused_as_git_decides(tmp_path: Path) -> None:
    """Paths ignored by the repository's .gitignore (nested rules, negations) are refused."""
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / ".gitignore").write_text("*.log\nbuild/\n!keep.log\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / ".gitignore").write_text("local_*.py\n")
    files = SecretFiles(tmp_path)
    assert not files.allows("debug.log")
    assert files.allows("keep.log")
    assert not files.allows("build/out.py")
    assert not files.allows("sub/local_settings.py")
    assert files.allows("local_settings.py")
    assert files.allows("pkg/app.py")


def test_without_git_the_root_gitignore_still_counts(tmp_path: Path) -> None:
    """Outside a git repository the root .gitignore is read directly."""
    (tmp_path / ".gitignore").write_text("# comment\nnotes.txt\n/dist/\n")
    files = SecretFiles(tmp_path)
    assert not files.allows("notes.txt")
    assert not files.allows("dist/pkg.whl")
    assert files.allows("pkg/app.py")


def test_secret_names_are_recognised_anywhere() -> None:
    """is_secret_name looks at every component of a path, absolute or not."""
    from pytest_orchestrator.redact import is_secret_name

    assert is_secret_name("/home/me/.ssh/id_rsa")
    assert is_secret_name("/home/me/.aws/credentials")
    assert is_secret_name("deploy/.env.production")
    assert not is_secret_name("/home/me/project/sizing.py")
