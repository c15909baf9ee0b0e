"""``slices.json`` carries a flat, ranked file list beside the slices (`LogicResult.files`)."""

from __future__ import annotations

from pytest_orchestrator.model import LogicResult, RankedFile, RankedSlice, Slice


def ranked(path: str, score: float, line: int = 1) -> RankedSlice:
    return RankedSlice(
        slice=Slice(
            path=path,
            symbol=f"f{line}",
            kind="function",
            start_line=line,
            end_line=line + 1,
            hash=f"{path}{line}",
            tokens=3,
        ),
        score=score,
    )


def test_files_rank_by_their_best_slice_and_survive_a_round_trip() -> None:
    result = LogicResult(
        slices=[
            ranked("a.py", 1.0),
            ranked("b.py", 3.0),
            ranked("a.py", 2.5, 9),
            ranked("c.py", 2.5),
        ],
        budget_tokens=100,
        used_tokens=9,
    )
    assert result.files == [
        RankedFile(path="b.py", score=3.0, rank=1),
        RankedFile(path="a.py", score=2.5, rank=2),
        RankedFile(path="c.py", score=2.5, rank=3),
    ]
    dumped = result.model_dump(mode="json")
    assert dumped["files"][0] == {"path": "b.py", "score": 3.0, "rank": 1}
    assert set(dumped) == {"slices", "files", "edges", "budget_tokens", "used_tokens"}
    assert LogicResult.model_validate(dumped) == result


def test_no_slices_no_files() -> None:
    assert LogicResult(slices=[], budget_tokens=1, used_tokens=0).files == []
