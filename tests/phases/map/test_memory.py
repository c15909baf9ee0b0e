"""Memory: earlier runs' choices, recalled for similar commands."""

from __future__ import annotations

from pathlib import Path

from pytest_orchestrator.model import Slice
from pytest_orchestrator.phases.map.memory import FILENAME, Memory, remember


def slice_(path: str, symbol: str) -> Slice:
    return Slice(
        path=path, symbol=symbol, kind="function", start_line=1, end_line=2, hash="0" * 40, tokens=5
    )


def test_similar_commands_recall_what_was_chosen(tmp_path: Path) -> None:
    """A command sharing most words with a remembered one recalls its slices."""
    remember(
        tmp_path,
        "Rename calculate_position_size to size_position",
        [slice_("s.py", "calculate_position_size")],
    )
    memory = Memory.open(tmp_path)
    recalled = memory.recall("Rename calculate_position_size to position_size")
    memory.close()
    assert recalled[("s.py", "calculate_position_size")] > 0.5


def test_unrelated_commands_recall_nothing(tmp_path: Path) -> None:
    """A command with no words in common recalls nothing."""
    remember(tmp_path, "speed up the volatility estimate", [slice_("v.py", "realised_vol")])
    memory = Memory.open(tmp_path)
    assert memory.recall("Rename calculate_position_size to position_size") == {}
    memory.close()


def test_a_corrupt_memory_file_is_rebuilt(tmp_path: Path) -> None:
    """Garbage in memory.sqlite is replaced by an empty memory, not an error."""
    (tmp_path / FILENAME).write_bytes(b"this is not a database" * 100)
    memory = Memory.open(tmp_path)
    memory.record("speed up volatility", [slice_("v.py", "vol")])
    assert memory.recall("speed up volatility") == {("v.py", "vol"): 1.0}
    memory.close()


def test_map_ranks_remembered_slices_up(tmp_path: Path) -> None:
    """A slice chosen before for the same command gains the memory component in Map."""
    from pytest_orchestrator.phases.map.phase import map_repository

    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "a.py").write_text("def widget_alpha():\n    pass\n")
    (repo / "b.py").write_text("def widget_beta():\n    pass\n")
    memory = Memory(None)
    memory.record("tune the widget", [slice_("b.py", "widget_beta")])
    result = map_repository(repo, "tune the widget", memory=memory)
    by_symbol = {r.slice.symbol: r for r in result.slices}
    assert by_symbol["widget_beta"].components["memory"] == 1.0
    assert result.slices[0].slice.symbol == "widget_beta"
