"""PR.md within GitHub's 65,536-character body limit: sections shrink in the stated order, and
a note says what was cut and where the whole is."""

from __future__ import annotations

import pytest

from pytest_orchestrator.phases.publish.phase import BODY_LIMIT, SHRINK_ORDER, fit_body

WHERE = "the run directory `run-1` and on branch `orchestrate/x`"


def sections(diff: int, plan: int, calls: int = 100) -> list[tuple[str, str]]:
    return [
        ("Summary", "# Title\n\n## Summary\n\n- **Gate: green**"),
        ("Attempts", "## Attempts\n\n| 1 | ok |"),
        ("Gate", "## Gate\n\nEvery test that passed at the base passes."),
        ("Model calls", "## Model calls\n\n" + "| call |\n" * (calls // 8)),
        ("Diff", "## Diff\n\n```diff\n" + "+line of the change\n" * (diff // 20) + "```"),
        ("plan.json", "## plan.json\n\n```json\n" + '{"step": 1}\n' * (plan // 12) + "```"),
        ("Trace", "## Trace\n\nhttp://phoenix/redirects/traces/abc"),
    ]


def test_a_body_that_fits_is_left_whole() -> None:
    body = fit_body(sections(diff=2_000, plan=1_000), WHERE)
    assert "Shortened" not in body
    assert body.count("+line of the change") == 100


def test_the_diff_goes_first_and_the_rest_stays() -> None:
    body = fit_body(sections(diff=200_000, plan=2_000), WHERE)
    assert len(body) <= BODY_LIMIT
    assert "Cut: Diff (first " in body
    assert "plan.json (" not in body.split("Cut:")[1].split("The whole")[0]
    assert body.count('{"step": 1}') == 2_000 // 12  # untouched
    assert "## Gate" in body
    assert "## Trace\n\nhttp://phoenix/redirects/traces/abc" in body
    assert f"The whole is in {WHERE}." in body
    diff = body.split("## Diff")[1].split("## plan.json")[0]
    assert diff.count("```") % 2 == 0  # its code block is closed
    assert "cut here; the whole is in the run directory" in diff


def test_when_the_diff_is_not_enough_plan_json_shrinks_next() -> None:
    body = fit_body(sections(diff=200_000, plan=200_000), WHERE)
    assert len(body) <= BODY_LIMIT
    cut = body.split("Cut: ")[1].split(". The whole")[0]
    names = [part.split(" (")[0] for part in cut.split("; ")]
    assert names == ["Diff", "plan.json"]
    assert names == [n for n in SHRINK_ORDER if n in names]  # in the stated order
    assert "## Gate\n\nEvery test that passed at the base passes." in body


@pytest.mark.parametrize("limit", [2_000, 5_000])
def test_small_limits_leave_stubs_and_still_fit(limit: int) -> None:
    body = fit_body(sections(diff=50_000, plan=50_000, calls=10_000), WHERE, limit=limit)
    assert len(body) <= limit
    assert body.startswith("# Title")
    assert "## Diff\n\n_(left out: " in body


def test_no_credential_reaches_the_body(monkeypatch: pytest.MonkeyPatch) -> None:
    """A red run's PR.md shows the plan that tried to add a credential: the value is gone
    from the body, whichever section carries it, and the rest of the section stays."""
    token = "s3cr3t-Value-only-this-process-knows-7f2c9a"
    monkeypatch.setenv("DEPLOY_TOKEN", token)
    aws = "AKIA" + "Q3EXAMPLE7XZ4LMN"
    body = fit_body(
        [
            ("Summary", "# Title\n\n## Summary\n\n- **Gate: red** (secrets)"),
            ("Diff", f'## Diff\n\n```diff\n+KEY = "{aws}"\n+x = 1\n```'),
            ("plan.json", f'## plan.json\n\n```json\n{{"new": "TOKEN = \\"{token}\\""}}\n```'),
            ("Attempts", f"## Attempts\n\n| 1 | evidence | printed {token} |"),
        ],
        WHERE,
    )
    assert token not in body
    assert aws not in body
    assert body.count("[REDACTED") == 3
    assert "+x = 1" in body
    assert "- **Gate: red** (secrets)" in body


def test_a_redacted_body_that_is_cut_keeps_its_note_under_the_summary(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DEPLOY_TOKEN", "s3cr3t-Value-only-this-process-knows-7f2c9a")
    body = fit_body(sections(diff=200_000, plan=2_000), WHERE)
    assert body.startswith("# Title\n\n## Summary\n\n- **Gate: green**\n\n> **Shortened")
