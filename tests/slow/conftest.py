"""The slow set: every test collected under ``tests/slow/`` is marked ``slow``.

The folder is the one source of the marker, so ``pytest -m "not slow"`` and
``pytest --ignore=tests/slow`` select the same tests. What goes here: end-to-end tests that
start real test runs, orchestrations or Monte Carlo children.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.slow)
