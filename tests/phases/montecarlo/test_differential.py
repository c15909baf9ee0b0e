"""Differential sampling: the kept functions run on base and candidate with the same inputs.

One base and one candidate run over a "zoo" of functions (module-scoped: a child-process run
is the expensive part); each test then states one behaviour of the report.
"""

from __future__ import annotations

from pathlib import Path

import pluggy
import pytest

from pytest_orchestrator.model import LogicResult, MonteCarloSummary, RankedSlice, Slice
from pytest_orchestrator.phases.montecarlo import differential
from pytest_orchestrator.phases.montecarlo import phase as mc
from pytest_orchestrator.phases.montecarlo.differential import (
    DifferentialReport,
    FunctionReport,
    read_report,
)
from pytest_orchestrator.plan import Budgets, Plan, Step
from pytest_orchestrator.run import Run
from pytest_orchestrator.settings import Settings
from pytest_orchestrator.tracing import Tracer

ZOO = '''\
from __future__ import annotations

import asyncio
import io
import random
import re
import threading
import time
from collections.abc import Callable


def scale(x: float, factor: float = 2.0) -> float:
    """>>> scale(3.0, 2.0)"""
    if x < 0:
        raise ValueError("negative")
    return x * factor


def uses_scale(x: float) -> float:
    return scale(x) + 1.0


def boundary(x: float) -> str:
    if x < 0.0:
        return "short"
    return "long"


def triple(x: float) -> float:
    return x * 3.0


def sorted_total(values: list[float]) -> float:
    values.sort()
    return sum(values)


def checked(n: int) -> int:
    if n > 100:
        raise ValueError("too big")
    return n


def countdown(n: int):
    for i in range(min(abs(n), 5), 0, -1):
        yield i


async def doubled(x: int) -> int:
    await asyncio.sleep(0)
    return 2 * x


async def stream(x: int):
    yield x


def spin(x: int) -> int:
    while True:
        x += 1


def writer(path: str) -> None:
    with open(path, "w") as fh:
        fh.write("x")


def sneaky(x: int) -> int:
    io.FileIO(SCRATCH, "w").close()
    return x


def clock(x: float) -> float:
    return time.time() + x


def lucky(x: float) -> float:
    return random.random() * x


def chatty(x: int) -> int:
    print("x" * 1_000_000)
    return x


def odd_result(x: int) -> dict:
    return {"f": lambda: x, "lock": threading.Lock(), "items": [x]}


def wants_callback(f: Callable[[int], int]) -> int:
    return f(1)


def words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def mover(x: int) -> int:
    return x + 1


class Account:
    def deposit(self, amount: float) -> float:
        return amount


SCRATCH = "SCRATCH_PATH"
'''

# The candidate: a rename, an extraction, a move and equivalent rewrites that must not be
# flagged, next to behaviour changes that must be.
CANDIDATE_EDITS = [
    ("def scale(", "def rescale("),
    ("return scale(x) + 1.0", "return rescale(x) + 1.0"),
    ("if x < 0.0:", "if x <= 0.0:"),
    ("return x * 3.0", "return x + x + x"),
    ("values.sort()\n    return sum(values)", "return sum(sorted(values))"),
    ('raise ValueError("too big")', 'raise TypeError("too big")'),
    ("for i in range(min(abs(n), 5), 0, -1):", "for i in range(min(abs(n), 5) + 1, 0, -1):"),
    ('    return re.findall(r"[a-z]+", text.lower())', "    return _split(text.lower())\n\n\n"
     'def _split(text: str) -> list[str]:\n    return re.findall(r"[a-z]+", text)'),
    ("def mover(x: int) -> int:\n    return x + 1\n", ""),
]  # fmt: skip
MOVED = "def mover(x: int) -> int:\n    return x + 1\n"

FUNCTIONS = [
    "scale", "uses_scale", "boundary", "triple", "sorted_total", "checked", "countdown",
    "doubled", "stream", "spin", "writer", "sneaky", "clock", "lucky", "chatty", "odd_result",
    "wants_callback", "words", "mover",
]  # fmt: skip


def make_run(tmp_path: Path, tree: Path, functions: list[str], seconds: float = 15.0) -> Run:
    run_dir = tmp_path / "run"
    run_dir.mkdir(exist_ok=True)
    settings = Settings(command="rename scale to rescale", run_root=tmp_path / "runs",
                        cache_dir=tmp_path.parent / "shared-cache", seed=2024,
                        budgets=Budgets(montecarlo_seconds=seconds))  # fmt: skip
    run = Run("diff", settings, tree, tree, "b", "c0ffee", None, run_dir,
              pluggy.PluginManager("pytest").hook, Tracer(run_dir / "trace.json"), {})  # fmt: skip
    slices = [
        RankedSlice(slice=Slice(path="pkg/zoo.py", symbol=name, kind=kind, start_line=1,
                                end_line=2, hash="0", tokens=1), score=1.0)
        for name, kind in [(f, "function") for f in functions] + [("Account.deposit", "method")]
    ]  # fmt: skip
    run.logic = LogicResult(slices=slices, budget_tokens=4000, used_tokens=1)
    return run


def write_zoo(tree: Path, scratch: Path) -> None:
    (tree / "pkg").mkdir(parents=True)
    (tree / "pkg" / "__init__.py").write_text("")
    (tree / "pkg" / "zoo.py").write_text(ZOO.replace("SCRATCH_PATH", str(scratch)))


Zoo = tuple[DifferentialReport, MonteCarloSummary, Path]
"""The candidate's report, its summary, and a path no sampled call may create."""

RENAME = Step(id="rename", pool="mutate", op="rename_symbol",
              args={"symbol": "scale", "new_name": "rescale"})  # fmt: skip


@pytest.fixture(scope="module")
def zoo(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[DifferentialReport, MonteCarloSummary, Path]:
    tmp = tmp_path_factory.mktemp("zoo")
    tree = tmp / "tree"
    scratch = tmp / "must-not-exist.txt"
    write_zoo(tree, scratch)
    # 250 samples a function (not 2,000) are plenty for these functions and leave the 15 s
    # budget room on a loaded host; how many a function gets is still the clock's to decide,
    # so the tests below ask for some, never for a number.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(differential, "MAX_SAMPLES", 250)
        run = make_run(tmp, tree, FUNCTIONS)
        base = mc.baseline(run)
    source = (tree / "pkg" / "zoo.py").read_text()
    for old, new in CANDIDATE_EDITS:
        assert old in source, old
        source = source.replace(old, new)
    (tree / "pkg" / "zoo.py").write_text(source)
    (tree / "pkg" / "other.py").write_text(MOVED)
    plan = Plan(command="rename scale to rescale", steps=[RENAME], behaviour_preserving=True)
    summary = mc.candidate(run, base, plan)
    report = read_report(run.run_dir / mc.DIFFERENTIAL_FILE)
    assert report is not None
    return report, summary, scratch


def fn(report: DifferentialReport, name: str) -> FunctionReport:
    (found,) = [f for f in report.functions if f.target == f"pkg.zoo.{name}"]
    return found


def test_pure_rename_is_not_flagged(
    zoo: Zoo,
) -> None:
    """A function renamed by the plan is found under its new name and agrees everywhere."""
    f = fn(zoo[0], "scale")
    assert f.candidate_name == "pkg.zoo.rescale"
    assert f.compared == f.samples > 0  # (how many: the clock decides under load)
    assert f.divergent == 0


def test_caller_of_a_renamed_function_is_not_flagged(
    zoo: Zoo,
) -> None:
    """A public function reaching the renamed one behaves the same."""
    f = fn(zoo[0], "uses_scale")
    assert f.compared > 0
    assert f.divergent == 0


def test_extraction_is_not_flagged(zoo: Zoo) -> None:
    """Extracting a helper keeps behaviour: no divergence."""
    f = fn(zoo[0], "words")
    assert f.compared > 0
    assert f.divergent == 0


def test_moved_function_is_found_in_its_new_module(
    zoo: Zoo,
) -> None:
    """A function moved to another module is followed there and compared."""
    f = fn(zoo[0], "mover")
    assert f.candidate_name == "pkg.other.mover"
    assert f.divergent == 0
    assert f.compared > 0


def test_float_reassociation_is_within_tolerance(
    zoo: Zoo,
) -> None:
    """x * 3 and x + x + x differ in the last bit at most: not a divergence."""
    assert fn(zoo[0], "triple").divergent == 0


def test_boundary_change_is_caught_with_a_counterexample(
    zoo: Zoo,
) -> None:
    """'<' turned into '<=' is found at the edge case 0.0, with the seed to replay it."""
    report, summary, _ = zoo
    f = fn(report, "boundary")
    assert f.divergent > 0
    assert f.counterexample is not None
    assert f.counterexample.input in ("(0.0)", "(-0.0)")
    assert "long" in f.counterexample.base
    assert "short" in f.counterexample.candidate
    assert any("counterexample pkg.zoo.boundary" in n and "seed 2024" in n for n in summary.notes)


def test_divergence_shows_in_the_summary_and_fails_the_gate(
    zoo: Zoo,
) -> None:
    """Divergent functions are MetricDeltas, so the summary's verdict says 'diverged'."""
    summary = zoo[1]
    diverged = {d.simulation for d in summary.diverged}
    assert "differential:pkg.zoo.boundary" in diverged
    assert "differential:pkg.zoo.scale" not in diverged
    assert summary.verdict == "diverged"


def test_argument_mutation_is_compared(
    zoo: Zoo,
) -> None:
    """Sorting the caller's list in place is behaviour: dropping it is a divergence."""
    f = fn(zoo[0], "sorted_total")
    assert f.divergent > 0
    assert f.counterexample is not None
    assert '"m"' in f.counterexample.base


def test_raised_exception_type_is_compared(
    zoo: Zoo,
) -> None:
    """ValueError becoming TypeError is a divergence."""
    f = fn(zoo[0], "checked")
    assert f.divergent > 0
    assert f.counterexample is not None
    assert "ValueError" in f.counterexample.base
    assert "TypeError" in f.counterexample.candidate


def test_generator_results_are_drained_and_compared(
    zoo: Zoo,
) -> None:
    """A generator function's items are compared: one more item is a divergence."""
    assert fn(zoo[0], "countdown").divergent > 0


def test_async_function_is_awaited(zoo: Zoo) -> None:
    """A coroutine function is run to completion and its result compared."""
    f = fn(zoo[0], "doubled")
    assert f.samples > 0
    assert f.raised < f.samples
    assert f.divergent == 0


def test_async_generator_is_skipped_with_a_reason(
    zoo: Zoo,
) -> None:
    """Async generators are not sampled, and the report says so."""
    assert fn(zoo[0], "stream").skipped == "async generator: not sampled"


def test_hanging_function_is_skipped_and_the_rest_continue(
    zoo: Zoo,
) -> None:
    """A call running past the per-call limit skips its function, not the phase."""
    assert fn(zoo[0], "spin").skipped.startswith("hangs: 3 calls ran over")


def test_file_writes_are_found_before_running(
    zoo: Zoo,
) -> None:
    """open(..., 'w') is seen in the source; the function is never called."""
    assert fn(zoo[0], "writer").skipped.startswith(
        "side effect: file I/O (open() in pkg.zoo.writer"
    )


def test_writes_the_source_hides_are_blocked_at_run_time(
    zoo: Zoo,
) -> None:
    """A write the static pass misses is stopped by the sandbox: no file appears."""
    f = fn(zoo[0], "sneaky")
    assert "at run time" in f.skipped
    assert not zoo[2].exists()


@pytest.mark.parametrize(
    ("name", "reason"),
    [("clock", "reads the clock"), ("lucky", "unseeded randomness")],
)
def test_nondeterministic_functions_are_skipped(zoo: Zoo, name: str, reason: str) -> None:
    """The clock and unseeded randomness make outcomes incomparable: skipped with why."""
    assert reason in fn(zoo[0], name).skipped


def test_printing_megabytes_is_harmless(
    zoo: Zoo,
) -> None:
    """Output is dropped in the child; the function is still sampled."""
    f = fn(zoo[0], "chatty")
    assert f.samples > 10
    assert not f.skipped


def test_unpicklable_and_unhashable_results_are_compared(
    zoo: Zoo,
) -> None:
    """Results holding lambdas and locks are encoded, not pickled."""
    f = fn(zoo[0], "odd_result")
    assert f.compared > 0
    assert f.divergent == 0


def test_unsupported_parameter_is_skipped_with_the_type(
    zoo: Zoo,
) -> None:
    """No generator for a callable argument: skipped, saying so."""
    assert fn(zoo[0], "wants_callback").skipped == "needs a callable argument"


def test_methods_are_sampled_on_drawn_instances(zoo: Zoo) -> None:
    """A kept method is called on an instance of its class built like any other input."""
    f = fn(zoo[0], "Account.deposit")
    assert f.skipped == ""
    assert f.compared > 0
    assert f.divergent == 0


def test_docstring_calls_come_first(tmp_path: Path, zoo: Zoo) -> None:
    """A call written in the docstring is an input source."""
    assert fn(zoo[0], "scale").sources.get("docstring") == 1


def test_report_states_throughput(zoo: Zoo) -> None:
    """Samples per second per core and peak mem_ratio are in the report."""
    report = zoo[0]
    assert report.samples > 0
    assert report.samples_per_second_per_core > 0
    assert report.peak_mem_ratio is not None


def test_public_callers_of_kept_functions_are_found(tmp_path: Path) -> None:
    """A public function one call above a kept one is sampled too; private ones are not."""
    from pytest_orchestrator.phases.montecarlo.targets import Target, public_callers

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "api.py").write_text(
        "from pkg.core import kernel\n\n"
        "def entry(x):\n    return kernel(x)\n\n"
        "def _hidden(x):\n    return kernel(x)\n\n"
        "def unrelated(x):\n    return x\n"
    )
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_api.py").write_text("def test_k():\n    kernel(1)\n")
    assert public_callers(tmp_path, {"kernel"}) == [Target("pkg.api", "entry")]


def test_pr_section_lists_sampled_functions_worst_first(zoo: Zoo) -> None:
    """The reviewer sees diverging functions at the top of the table."""
    text = mc.pr_section(zoo[1])
    rows = [line for line in text.splitlines() if line.startswith("| `pkg.zoo.")]
    assert rows
    first_divergent = float(rows[0].split("|")[5])
    assert first_divergent > 0


ORDER = """\
class Order:
    def __init__(self, qty: int) -> None:
        self.qty = qty


def premium(order: Order) -> float:
    return order.qty * 1.5
"""
STRATEGIES = """\
import pytest


@pytest.hookimpl(optionalhook=True)
def pytest_orchestrator_strategies():
    from pkg.orders import Order

    return {Order: lambda rng: Order(int(rng.integers(1, 10)))}
"""


def test_user_strategies_from_the_conftest_build_unsupported_types(tmp_path: Path) -> None:
    """A class with no generator is sampled through the conftest's strategy for it."""
    tree = tmp_path / "tree"
    (tree / "pkg").mkdir(parents=True)
    (tree / "pkg" / "__init__.py").write_text("")
    (tree / "pkg" / "orders.py").write_text(ORDER)
    (tree / "conftest.py").write_text(STRATEGIES)
    run = make_run(tmp_path, tree, [])
    run.logic = LogicResult(
        slices=[RankedSlice(slice=Slice(path="pkg/orders.py", symbol="premium", kind="function",
                                        start_line=1, end_line=2, hash="0", tokens=1), score=1.0)],
        budget_tokens=4000, used_tokens=1,
    )  # fmt: skip
    mc.baseline(run)
    report = read_report(run.run_dir / mc.DIFFERENTIAL_FILE)
    assert report is not None
    (f,) = report.functions
    assert f.skipped == ""
    assert f.samples > 0
    assert f.raised == 0


POSITION = """\
class Position:
    def __init__(self, qty: int, price: float) -> None:
        self.qty = qty
        self.price = price

    def value(self) -> float:
        return self.qty * self.price

    def scale(self, factor: float) -> None:
        self.qty = int(self.qty * factor)
"""


def test_methods_follow_a_class_rename_and_catch_a_changed_mutation(tmp_path: Path) -> None:
    """Renaming the class is no divergence; changing how a method mutates 'self' is one."""
    tree = tmp_path / "tree"
    (tree / "pkg").mkdir(parents=True)
    (tree / "pkg" / "__init__.py").write_text("")
    (tree / "pkg" / "book.py").write_text(POSITION)
    run = make_run(tmp_path, tree, [])
    run.logic = LogicResult(
        slices=[RankedSlice(slice=Slice(path="pkg/book.py", symbol=m, kind="method",
                                        start_line=1, end_line=2, hash="0", tokens=1), score=1.0)
                for m in ("Position.value", "Position.scale")],
        budget_tokens=4000, used_tokens=1,
    )  # fmt: skip
    base = mc.baseline(run)
    source = POSITION.replace("class Position", "class Holding")
    source = source.replace("int(self.qty * factor)", "round(self.qty * factor)")
    (tree / "pkg" / "book.py").write_text(source)
    step = Step(id="r", pool="mutate", op="rename_symbol",
                args={"symbol": "Position", "new_name": "Holding"})  # fmt: skip
    mc.candidate(run, base, Plan(command="rename Position", steps=[step]))
    report = read_report(run.run_dir / mc.DIFFERENTIAL_FILE)
    assert report is not None
    value = next(f for f in report.functions if f.target == "pkg.book.Position.value")
    scale = next(f for f in report.functions if f.target == "pkg.book.Position.scale")
    assert value.candidate_name == "pkg.book.Holding.value"
    assert value.compared > 0
    assert value.divergent == 0
    assert scale.divergent > 0
    assert scale.counterexample is not None
    assert '"m"' in scale.counterexample.base


@pytest.mark.parametrize(
    ("qualname", "renames", "expected"),
    [
        ("wrap", {"wrap": "wrap2"}, "wrap2"),
        ("Wrapper.wrap", {"wrap": "wrap2"}, "Wrapper.wrap"),
        ("Wrapper.wrap", {"Wrapper": "Folder"}, "Folder.wrap"),
        ("Wrapper.wrap", {"Wrapper.wrap": "fold", "Wrapper": "Folder"}, "Folder.fold"),
    ],
)
def test_renames_apply_to_the_symbol_they_name(
    qualname: str, renames: dict[str, str], expected: str
) -> None:
    """Renaming the function 'wrap' leaves the method 'Wrapper.wrap' alone; a class rename
    carries its methods along."""
    from pytest_orchestrator.phases.montecarlo.targets import renamed

    assert renamed(qualname, renames) == expected
