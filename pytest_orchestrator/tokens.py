"""Token estimates, the token caps and the ledger of model calls.

The API's ``count_tokens`` needs the network, so budgets are checked against a local estimate
that errs high: Claude's tokenizer averages ~3.5-4 characters per token on code and English;
we count 3 characters per token, and never fewer than one token per word-ish run, so a budget
that fits the estimate fits the real count.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any, Final

from pytest_orchestrator.errors import BudgetExceeded

CHARS_PER_TOKEN: Final = 3.0
MAX_INPUT_TOKENS_PER_STEP: Final = 4000
"""The most input tokens (by `estimate_tokens`) one model call may carry."""
MAX_OUTPUT_TOKENS: Final = 4096
"""The most ``max_tokens`` any model call may ask for."""
_RUNS: Final = re.compile(r"\w+|[^\w\s]")


def estimate_tokens(text: str) -> int:
    """A conservative (high) estimate of the tokens in ``text``."""
    if not text:
        return 0
    by_chars = len(text) / CHARS_PER_TOKEN
    by_runs = len(_RUNS.findall(text))
    return int(max(by_chars, by_runs * 0.75)) + 1


@dataclass
class TokenLedger:
    """Every model call of a run, and the run's token cap checked before each call."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def input_tokens(self) -> int:
        return sum(int(c.get("input_tokens", 0)) for c in self.calls)

    @property
    def output_tokens(self) -> int:
        return sum(int(c.get("output_tokens", 0)) for c in self.calls)

    def check(self, estimated_input: int, max_output: int, cap: int | None) -> None:
        """Raise `BudgetExceeded` if a call of this size could cross the run's token cap
        (``cap`` tokens in and out over the whole run; None: no cap)."""
        if cap is None:
            return
        spent = self.input_tokens + self.output_tokens
        if spent + estimated_input + max_output > cap:
            raise BudgetExceeded(
                f"the run's token cap ({cap}) would be crossed: {spent} spent, this call may use "
                f"{estimated_input + max_output}; raise ORCHESTRATE_MAX_RUN_TOKENS or narrow the "
                "command"
            )

    def record(self, **call: Any) -> None:
        with self._lock:
            self.calls.append(call)
