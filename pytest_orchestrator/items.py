"""Plan steps as pytest items: ``plan.json::mutate:rename`` passes or fails like a test.

The controller's collection is the plan: one `PlanFile` whose items are the steps in DAG
order, then the gate (``plan.json::gate``), the orchestrator's own run of the whole suite
that no plan can leave out. Items report which pool ran them (``user_properties``: pool,
worker), so the pool semantics stay observable in every report, JUnit XML included.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from pytest_orchestrator.errors import OrchestratorError

if TYPE_CHECKING:
    # TerminalRepr has no public name; it is only the return type pytest's own
    # ``Item.repr_failure`` declares, which the override must match.
    from _pytest._code.code import TerminalRepr

    from pytest_orchestrator.plan import Plan, Step


class StepFailed(Exception):
    """A step that ran and did not succeed; the message is the whole report."""


class StepRunner(Protocol):
    def run_step(self, item: StepItem) -> None: ...

    def run_gate(self, item: GateItem) -> None: ...


class PlanFile(pytest.File):
    """The plan of one attempt, as a collector of step items."""

    def __init__(self, *, plan: Plan, number: int, runner: StepRunner, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan = plan
        self.number = number
        self.runner = runner

    def collect(self) -> Iterator[PlanItem]:
        suffix = "" if self.number == 1 else f"[attempt{self.number}]"
        for step in self.plan.order():
            yield StepItem.from_parent(self, name=f"{step.pool}:{step.id}{suffix}", step=step)
        yield GateItem.from_parent(self, name=f"gate{suffix}")


class PlanItem(pytest.Item):
    """An item of one attempt's plan file: a step or the gate."""

    parent: PlanFile

    @property
    def plan(self) -> Plan:
        return self.parent.plan

    @property
    def number(self) -> int:
        return self.parent.number

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | TerminalRepr:
        if isinstance(excinfo.value, StepFailed | OrchestratorError):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)


class GateItem(PlanItem):
    """The gate of one attempt: the whole suite under the base's test configuration,
    held to the base's results. Not part of plan.json: no plan can drop or narrow it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.user_properties.append(("pool", "gate"))

    def runtest(self) -> None:
        self.parent.runner.run_gate(self)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, "gate: the whole suite under the base's test configuration"


class StepItem(PlanItem):
    """One plan step. Running it runs the step's op through the session's step runner."""

    def __init__(self, *, step: Step, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.step = step
        self.user_properties.append(("pool", step.pool))
        self.user_properties.append(("op", step.op))

    def runtest(self) -> None:
        self.parent.runner.run_step(self)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        why = f" — {self.step.why}" if self.step.why else ""
        return self.path, None, f"{self.step.pool}:{self.step.id} ({self.step.op}){why}"
