"""Every error the orchestrator raises on purpose.

::

    OrchestratorError              something the user can act on; the message says what to do
    ├── RepositoryError            not a git repository, no commits, a branch that cannot be made
    ├── PlanError                  a plan.json (from a file or a planner) that cannot be run
    │   └── PlanValidationError    … with one problem per offending step
    ├── PlannerRefused             the command is beyond this planner (exit status 4)
    ├── EditError                  an edit that cannot be applied: outside the repository,
    │                              search text not found, unknown symbol, bad new name
    ├── BudgetExceeded             a token, time or memory budget would be crossed
    ├── ModelCallError             a model call that cannot succeed as configured (bad key,
    │                              invalid request, retries spent)
    └── TestRunError               the inner test run could not be trusted (wrong checkout
                                   imported, crashed before reporting)

`StopRun` is not an error: it is the one way a phase ends the run early, carrying the
`ExitReason` that the summary reports and the exit status derives from.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, final

if TYPE_CHECKING:
    from pytest_orchestrator.model import ExitReason


class OrchestratorError(Exception):
    """Base class: the message is shown to the user as is, so it must say what to do."""


@final
class RepositoryError(OrchestratorError):
    """The repository is not in a state the run can start from."""


class PlanError(OrchestratorError):
    """A plan that cannot be run."""


@final
class PlanValidationError(PlanError):
    """A plan that fails validation; ``problems`` holds ``(step_id, reason)`` pairs."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = list(problems)
        lines = [f"  step {step_id!r}: {reason}" for step_id, reason in self.problems]
        super().__init__("invalid plan (nothing was changed):\n" + "\n".join(lines))


@final
class PlannerRefused(OrchestratorError):
    """The planner does not understand the command; the message names one that would."""


@final
class EditError(OrchestratorError):
    """An edit that cannot be applied as asked."""


@final
class BudgetExceeded(OrchestratorError):
    """Carrying on would cross a hard budget (tokens, wall clock, memory)."""


@final
class ModelCallError(OrchestratorError):
    """A model call that cannot succeed as configured: the message says what to set."""


@final
class TestRunError(OrchestratorError):
    """The inner test session produced no result that can be trusted."""

    __test__ = False  # not a test class, whatever pytest's name heuristics think


@final
class StopRun(Exception):
    """Ends the run early from any phase; caught once, by the runner."""

    def __init__(self, reason: ExitReason, message: str) -> None:
        self.reason = reason
        self.message = message
        super().__init__(f"{reason.value}: {message}")
