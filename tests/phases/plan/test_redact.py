"""Secrets never leave: which files may be read into a request, and what strings are scrubbed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_orchestrator.phases.plan.redact import (
    SecretFiles,
    find_secrets,
    is_secret_env_name,
    is_settings_module,
    redact,
    redact_json,
    redact_source,
    scrub_environment,
    secret_env_values,
)

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
    from pytest_orchestrator.phases.plan.redact import is_secret_name

    assert is_secret_name("/home/me/.ssh/id_rsa")
    assert is_secret_name("/home/me/.aws/credentials")
    assert is_secret_name("deploy/.env.production")
    assert not is_secret_name("/home/me/project/sizing.py")


# ---------------------------------------------------------------------------- more shapes


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Rotate it, my password is hunter2-PLANTED!", "hunter2-PLANTED"),
        ("deploy with the api key: Qx7-planted-key", "Qx7-planted-key"),
        ("Use my token: plantedtoken please", "plantedtoken"),
        ("then secret = s3cr3t-planted in the settings", "s3cr3t-planted"),
        ("The DB passphrase was correct-horse-42.", "correct-horse-42"),
    ],
)
def test_secrets_written_in_prose_are_redacted(text: str, secret: str) -> None:
    """``password is X``, ``my token: X``, ``secret = X``: the value goes, the sentence stays."""
    scrubbed = redact(text, ())
    assert secret not in scrubbed
    assert "[REDACTED:prose-secret]" in scrubbed


@pytest.mark.parametrize(
    ("text", "secret", "kept"),
    [
        (
            'HOOK = "https://hooks.slack.com/services/T0PLANT/B0PLANT/Xy9PlantedSlackHookToken"',
            "T0PLANT/B0PLANT/Xy9PlantedSlackHookToken",
            "hooks.slack.com/services/",
        ),
        (
            "post to https://discord.com/api/webhooks/123456789012/PlAnTeD-discord_token",
            "PlAnTeD-discord_token",
            "discord.com/api/webhooks/",
        ),
        (
            "https://acme.webhook.office.com/webhookb2/planted-teams-id@tenant/IncomingWebhook/x",
            "planted-teams-id",
            "webhook.office.com/",
        ),
        (
            "GET https://api.example.com/v1?api_key=plantedQUERYkey&page=2",
            "plantedQUERYkey",
            "page=2",
        ),
        ("clone https://bob:pl4nted@git.example.com/r.git", "pl4nted", "@git.example.com"),
    ],
)
def test_webhook_urls_and_url_secrets_are_redacted(text: str, secret: str, kept: str) -> None:
    """Webhook URLs lose their token part; the host stays so the model knows what it was."""
    scrubbed = redact(text, ())
    assert secret not in scrubbed
    assert kept in scrubbed


@pytest.mark.parametrize(
    "url",
    [
        "postgres://app:PlantedPg1@db.internal:5432/app",
        "postgresql+psycopg2://app:PlantedPg1@db/app",
        "mysql://root:PlantedPg1@127.0.0.1/shop",
        "mongodb+srv://svc:PlantedPg1@cluster0.abcde.mongodb.net/prod?retryWrites=true",
        "redis://:PlantedPg1@cache:6379/0",
        "amqp://worker:PlantedPg1@rabbit:5672//",
        "Server=tcp:sql.example.net,1433;Database=shop;User ID=app;Password=PlantedPg1;",
        "Server=sql.example.net;Database=shop;Pwd=PlantedPg1",
        "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=PlantedPg1;EndpointSuffix=x",
    ],
)
def test_connection_strings_lose_their_password(url: str) -> None:
    """Database and broker URLs, ADO.NET and Azure storage strings: the password goes."""
    scrubbed = redact(f'DATABASES = {{"default": "{url}"}}', ())
    assert "PlantedPg1" not in scrubbed
    assert "[REDACTED:" in scrubbed


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ('API_KEY = os.environ.get("API_KEY", "fallback-planted")', "fallback-planted"),
        ("token = os.getenv('SERVICE_TOKEN', 'dev')", "'dev'"),
        ('salt = os.getenv("SALT", "k3Y+9fJ2sLq8Pz0wXc7VbN4mR1tY6uI5")', "k3Y+9fJ2sLq8Pz0wXc7V"),
        ('region = os.getenv("REGION_ID", "d41d8cd98f00b204e9800998ecf8427e")', "d41d8cd98f00b204"),
    ],
)
def test_environment_defaults_are_redacted(line: str, secret: str) -> None:
    """A getenv default goes when the variable is a credential or the default looks random."""
    scrubbed = redact(line, ())
    assert secret not in scrubbed
    assert "[REDACTED:env-default]" in scrubbed


def test_plain_environment_defaults_stay() -> None:
    """``os.getenv("REGION", "eu-west-1")`` is configuration, not a secret."""
    line = 'region = os.getenv("REGION", "eu-west-1")'
    assert redact(line, ()) == line


@pytest.mark.parametrize(
    "secret",
    [
        "k3Y+9fJ2sLq8Pz0wXc7VbN4mR1tY6uI5oE2aS9dF0gH=",  # 32 bytes, padded
        "T9fQ2vLx8RbZ3mKc7WpN1hYd5GsJ0aUe",  # 24 bytes (32 characters)
        "q7Lr2XvN0pWb5TzYc8Hd1a",  # 16 bytes, unpadded
    ],
)
def test_bare_base64_keys_are_redacted(secret: str) -> None:
    """A bare base64 token of a key's length, mixed case with digits, goes even unassigned."""
    scrubbed = redact(f"FERNET = load({secret!r})\nprint({secret})", ())
    assert secret not in scrubbed
    assert "[REDACTED:base64-key]" in scrubbed


def test_high_entropy_values_of_secret_looking_names_are_redacted() -> None:
    """``SIGNING_KEY = <random hex>`` and unquoted ``SALT=<random>`` go; their names stay."""
    text = (
        "SIGNING_KEY = '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'\n"
        "SALT=Xq3vR8mZp2LwT5yN1cB7"
    )
    scrubbed = redact(text, ())
    assert "9f86d081884c7d659a2f" not in scrubbed
    assert "Xq3vR8mZp2LwT5yN1cB7" not in scrubbed
    assert scrubbed.startswith("SIGNING_KEY = '[REDACTED:high-entropy]'")


@pytest.mark.parametrize(
    "path",
    ["settings.py", "app/config.py", "app/prod_settings.py", "conf/base.py", "config/app.yaml"],
)
def test_random_literals_of_settings_modules_are_redacted(path: str) -> None:
    """In a settings module any random-looking literal goes, whatever name it has."""
    source = 'APP = "shop"\nSIGNATURE = "Lp9Vx2Qm7Rt4Zk1Wb8Nc3Hd6Fq"\nDEBUG = False\n'
    assert is_settings_module(path)
    scrubbed = redact_source(path, source, ())
    assert "Lp9Vx2Qm7Rt4Zk1Wb8Nc3Hd6Fq" not in scrubbed
    assert 'APP = "shop"' in scrubbed
    assert redact_source("app/views.py", source, ()) == source  # elsewhere it is only a string
    assert not is_settings_module("app/views.py")


def test_a_settings_module_shown_in_a_prompt_is_redacted_on_the_wire() -> None:
    """The ``### path::symbol`` blocks of a request say which file a text comes from."""
    shown = (
        "### pkg/settings.py::<module> (lines 1-2)\n"
        '```python\nX = "Lp9Vx2Qm7Rt4Zk1Wb8Nc3Hd6Fq"\n```'
    )
    note = "nearest match at line 1:\nX = 'Lp9Vx2Qm7Rt4Zk1Wb8Nc3Hd6Fq'"
    body = redact_json({"messages": [{"role": "user", "content": shown}, {"content": note}]}, ())
    assert "Lp9Vx2Qm7Rt4Zk1Wb8Nc3Hd6Fq" not in repr(body)
    assert "### pkg/settings.py::<module>" in body["messages"][0]["content"]


@pytest.mark.parametrize(
    "text",
    [
        "token = get_token()",
        "password = request.form['password']",
        "if token is None:",
        "raise ValueError('password is required')",
        "sorted(items, key=itemgetter(1))",
        "commit 8e05916a1b2c3d4e5f60718293a4b5c6d7e8f901 on main",
        "def test_the_plan_comes_back_through_the_submit_plan_tool(): ...",
        "The password is too short",
        "password: str | None = None",
        'region = os.getenv("REGION", "eu-west-1")',
    ],
)
def test_code_about_credentials_is_left_alone(text: str) -> None:
    """The new shapes do not mangle code that merely handles credentials."""
    assert redact(text, ()) == text


# ---------------------------------------------------------------------------- environment

ENVIRON = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/home/me",
    "LANG": "C.UTF-8",
    "ANTHROPIC_API_KEY": "sk-ant-planted-env-key",
    "MY_SERVICE_TOKEN": "plantedServiceToken",
    "db_password": "planted-db-pass",
    "DATABASE_URL": "postgres://app:plantedurl@db/app",
    "SLACK_CHANNEL": "#planted-alerts",
    "AZURE_CLIENT_SECRET": "planted-azure-secret",
    "GIT_AUTHOR_NAME": "Jane Doe",
    "ORCHESTRATE_MAX_RUN_TOKENS": "200000",
    "API_KEY_SHORT": "abc",
    "PRIVATE_PEM": "-----BEGIN KEY-----\nplanted-first-line-of-key\nplanted-second-line-key\n",
}


def test_credential_variables_are_recognised_by_name() -> None:
    """Word rule (any case), known providers' variables, and names that only look the part."""
    assert is_secret_env_name("MY_SERVICE_TOKEN")
    assert is_secret_env_name("db_password")
    assert is_secret_env_name("GOOGLE_APPLICATION_CREDENTIALS")
    assert is_secret_env_name("DATABASE_URL")
    assert is_secret_env_name("SLACK_CHANNEL")
    assert is_secret_env_name("AZURE_TENANT_ID")
    assert is_secret_env_name("SSH_AUTH_SOCK")
    assert not is_secret_env_name("GIT_AUTHOR_NAME")
    assert not is_secret_env_name("ORCHESTRATE_MAX_RUN_TOKENS")
    assert not is_secret_env_name("PATH")
    assert not is_secret_env_name("LANG")


def test_secret_env_values_are_the_credentials_worth_scrubbing() -> None:
    """Values of credential variables, longest first; short ones and settings are left out."""
    values = secret_env_values(ENVIRON)
    for name in ("ANTHROPIC_API_KEY", "MY_SERVICE_TOKEN", "db_password", "DATABASE_URL"):
        assert ENVIRON[name] in values
    assert "planted-first-line-of-key" in values  # one line of a multi-line key
    assert "abc" not in values
    assert "Jane Doe" not in values
    assert "200000" not in values
    assert "/usr/bin:/bin" not in values
    assert [len(v) for v in values] == sorted((len(v) for v in values), reverse=True)


def test_scrub_environment_drops_credentials_and_keeps_the_rest() -> None:
    """The child's environment keeps PATH, HOME, LANG and settings; ``allow`` keeps some back."""
    scrubbed = scrub_environment(ENVIRON)
    assert {"PATH", "HOME", "LANG", "GIT_AUTHOR_NAME", "ORCHESTRATE_MAX_RUN_TOKENS"} <= set(
        scrubbed
    )
    for name in ("ANTHROPIC_API_KEY", "MY_SERVICE_TOKEN", "db_password", "DATABASE_URL"):
        assert name not in scrubbed
    assert "API_KEY_SHORT" not in scrubbed  # short values leave the environment all the same
    kept = scrub_environment(ENVIRON, allow=["database_*", "SLACK_*"])
    assert kept["DATABASE_URL"] == ENVIRON["DATABASE_URL"]
    assert kept["SLACK_CHANNEL"] == ENVIRON["SLACK_CHANNEL"]
    assert "AZURE_CLIENT_SECRET" not in kept
    assert ENVIRON["PATH"] == "/usr/bin:/bin"  # the input is not changed


def test_environment_values_are_scrubbed_by_exact_match(monkeypatch: pytest.MonkeyPatch) -> None:
    """A credential printed verbatim (a failing test's output) is scrubbed, wherever it is."""
    monkeypatch.setenv("INTERNAL_SERVICE_TOKEN", "pl4nted-opaque-value")
    text = "E  AssertionError: got 'pl4nted-opaque-value' (expected the default)"
    assert "pl4nted-opaque-value" not in redact(text)
    assert "[REDACTED:env]" in redact(text)
    body = redact_json({"messages": [{"role": "user", "content": text}]})
    assert "pl4nted-opaque-value" not in repr(body)


def test_thinking_blocks_and_structure_are_never_rewritten() -> None:
    """Signed thinking blocks go back as they came; ``type``/``role`` are not env-scrubbed."""
    secret = "object-planted"
    thinking = {"type": "thinking", "thinking": f"mentions {secret}", "signature": "sig"}
    hidden = {"type": "redacted_thinking", "data": f"opaque {secret}"}
    body = {
        "messages": [
            {"role": "assistant", "content": [thinking, hidden, {"type": "text", "text": secret}]}
        ],
        "tools": [{"input_schema": {"type": "object"}}],
    }
    scrubbed = redact_json(body, [secret, "object"])
    assert scrubbed["messages"][0]["content"][0] == thinking
    assert scrubbed["messages"][0]["content"][1] == hidden
    assert scrubbed["messages"][0]["content"][2]["text"] == "[REDACTED:env]"
    assert scrubbed["tools"][0]["input_schema"]["type"] == "object"


SECRETS = st.text(min_size=6, max_size=24).filter(lambda s: s not in "[REDACTED:env]")


@given(text=st.text(max_size=80), secrets=st.lists(SECRETS, min_size=1, max_size=3))
def test_no_exact_secret_survives_redaction(text: str, secrets: list[str]) -> None:
    """Whatever the text and the values, none of them is left in the result."""
    planted = f"{text}{secrets[0]}{text}"
    once = redact(planted, secrets)
    for secret in secrets:
        assert secret not in once


JSON = st.recursive(
    st.none() | st.integers() | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.text(max_size=8).filter(lambda k: k not in ("type", "role")), inner, max_size=3
        )
    ),
    max_leaves=10,
)


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


@given(body=JSON, secret=SECRETS)
def test_no_exact_secret_survives_in_any_string_of_a_body(body: object, secret: str) -> None:
    """redact_json leaves the value in no string of a request body, keys included."""
    planted = {"messages": [body, secret, {secret: f"x{secret}y"}]}
    for string in _strings(redact_json(planted, [secret])):
        assert secret not in string


def test_only_an_assistant_messages_thinking_blocks_are_exempt() -> None:
    """A dict that says it is a thinking block inside a tool's input or result, or a user
    message, is scrubbed: the exemption cannot be used to carry a secret out."""
    secret = "sk-ant-api03-PLANTEDthinkingSmuggle0123456789"
    fake = {"type": "thinking", "thinking": secret, "signature": "sig"}
    body = {
        "messages": [
            {"role": "user", "content": [fake]},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t", "name": "x", "input": {"a": fake}}],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t", "content": [fake]}],
            },
        ]
    }
    assert secret not in repr(redact_json(body))
