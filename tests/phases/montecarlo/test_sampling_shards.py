"""How many sampling children the candidate side starts: as many as the base side's
measured sampling time calls for, one per core at most; the base side one per core."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_orchestrator.phases.montecarlo.differential import (
    SHARD_SECONDS,
    DifferentialReport,
    FunctionReport,
    Sampler,
)


def candidate_children(tmp_path: Path, sampling_seconds: float, cores: int) -> int:
    """The children the candidate side's first round starts, after a base side that sampled
    three functions in ``sampling_seconds``."""
    tree, work = tmp_path / "tree", tmp_path / "work"
    (tree / "pkg").mkdir(parents=True)
    (tree / "pkg" / "mod.py").write_text(
        "def a(x): return x\ndef b(x): return x\ndef c(x): return x\n"
    )
    work.mkdir()
    base = DifferentialReport(
        side="base",
        seed=1,
        samples=3000,
        sampling_seconds=sampling_seconds,
        functions=[
            FunctionReport(target=f"pkg.mod.{name}", module="pkg.mod", qualname=name, samples=1000)
            for name in "abc"
        ],
    )
    base.write(work / "base.differential.json")
    sampler = Sampler.for_candidate(tree, 1, work, None)
    sampler.parallel = sampler.shards(cores)
    return len(sampler.child_specs({}, until=0.0))


@pytest.mark.parametrize(
    ("seconds", "cores", "children"),
    [
        (0.5, 2, 1),  # less than a child's worth: one child, one interpreter start saved
        (SHARD_SECONDS * 1.5, 2, 2),
        (SHARD_SECONDS * 1.5, 4, 2),
        (SHARD_SECONDS * 10, 4, 3),  # never more children than targets
        (SHARD_SECONDS * 10, 1, 1),
    ],
)
def test_the_candidate_side_starts_the_children_its_work_needs(
    tmp_path: Path, seconds: float, cores: int, children: int
) -> None:
    assert candidate_children(tmp_path, seconds, cores) == children


def test_the_base_side_and_an_unmeasured_candidate_use_every_core(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    base = Sampler("base", 1, work, tmp_path, [], {})
    assert base.shards(3) == 3
    unmeasured = Sampler.for_candidate(tmp_path, 1, work, None)  # no base report
    assert unmeasured.base_sampling_seconds is None
    assert unmeasured.shards(3) == 3
