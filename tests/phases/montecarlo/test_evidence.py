"""PR.md says plainly when Monte Carlo compared mostly error paths."""

from __future__ import annotations

from pytest_orchestrator.model import MonteCarloSummary, SimulationResult
from pytest_orchestrator.phases.montecarlo import phase as mc


def result(name: str, samples: int, raised: int) -> SimulationResult:
    return SimulationResult(
        name=f"differential:{name}", samples=samples, metrics={"raised": float(raised)}
    )


def test_most_samples_raising_is_called_weak_evidence() -> None:
    funcs = [result("m.parse", 1000, 900), result("m.width", 1000, 100)]
    text = mc.weak_evidence(funcs)
    assert text.startswith("**Weak evidence**: 50% of the samples reached a return")
    assert "(`m.parse`)" in text


def test_samples_that_mostly_return_are_not_called_weak() -> None:
    assert mc.weak_evidence([result("m.width", 1000, 100), result("m.pad", 10, 4)]) == ""


def test_the_table_shows_the_share_that_returned() -> None:
    summary = MonteCarloSummary(seed=1, base=[result("m.parse", 200, 150)])
    text = mc.pr_section(summary)
    assert "| `m.parse` | 200 | 150 | 25% | n/a |" in text
    assert "**Weak evidence**: 25%" in text
