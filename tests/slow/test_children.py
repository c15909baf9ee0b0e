"""Child processes under a real memory watch, end to end."""

from __future__ import annotations

import time
from pathlib import Path

from pytest_orchestrator.guard.children import RssWatch, run_children
from tests.guard.children_helpers import spec


def test_rss_watch_stops_a_growing_group(tmp_path: Path) -> None:
    """End to end, without a gauge: the stand-in watch kills a child growing without bound.
    (Whether it stays under the limit depends on the machine's speed: tests/guard/test_children.py
    checks the decision; benchmarks/bench_pressure.py measures the overshoot.)"""
    hog = (
        "import time\nblocks = []\nwhile True:\n"
        "    blocks.append(b'x' * 5_000_000)\n    time.sleep(0.02)\n"
    )
    watch = RssWatch(limit_bytes=300_000_000, interval=0.02)
    try:
        (result,) = run_children([spec(tmp_path, hog)], time.monotonic() + 300, guard=watch)
    finally:
        watch.close()
    assert result.crashed
    assert result.describe() == "killed by SIGKILL"
    assert watch.stopped == ["c"]
