"""Finding side effects in source, and blocking them at run time."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_orchestrator.phases.montecarlo.sideeffects import (
    ModuleIndex,
    Sandbox,
    SideEffectBlocked,
    analyse,
)


def index_of(tmp_path: Path, **modules: str) -> ModuleIndex:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    for name, source in modules.items():
        (tmp_path / "pkg" / f"{name}.py").write_text(source)
    return ModuleIndex(tmp_path)


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("import time\ndef f(x):\n    return time.time() + x\n", "reads the clock"),
        ("from datetime import datetime\ndef f(x):\n    return datetime.now()\n",
         "reads the clock"),
        ("import random\ndef f(x):\n    return random.random()\n", "unseeded randomness"),
        ("import numpy as np\ndef f(x):\n    return np.random.rand(3)\n", "unseeded randomness"),
        ("import numpy as np\ndef f(x):\n    return np.random.default_rng().random()\n",
         "unseeded randomness"),
        ("def f(p):\n    open(p, 'w').write('x')\n", "file I/O"),
        ("import subprocess\ndef f(x):\n    subprocess.run(['ls'])\n", "starts processes"),
        ("import requests\ndef f(u):\n    return requests.get(u)\n", "network"),
        ("def f(p):\n    p.write_text('x')\n", "file I/O"),
        ("def f():\n    return input()\n", "reads stdin"),
        ("import os\ndef f():\n    return os.environ['HOME']\n", "reads or writes the environment"),
        ("N = 0\ndef f():\n    global N\n    N += 1\n", "writes module globals"),
    ],
)  # fmt: skip
def test_side_effects_are_found_in_the_source(tmp_path: Path, source: str, reason: str) -> None:
    """Each kind of side effect is named with the call that gave it away."""
    finding = analyse(index_of(tmp_path, mod=source), "pkg.mod", "f")
    assert finding is not None
    assert finding.reason == reason


@pytest.mark.parametrize(
    "source",
    [
        "import math\ndef f(x):\n    return math.sqrt(x)\n",
        "import numpy as np\ndef f(x):\n    return np.random.default_rng(42).random()\n",
        "import random\ndef f(x):\n    return random.Random(x).random()\n",
        "def f(rng):\n    return rng.random()\n",
        "def f(values):\n    values.sort()\n    return values\n",
    ],
)
def test_pure_and_seeded_code_is_sampled(tmp_path: Path, source: str) -> None:
    """Seeded generators, the caller's own rng and in-place edits of arguments are fine."""
    assert analyse(index_of(tmp_path, mod=source), "pkg.mod", "f") is None


def test_effects_are_followed_through_calls_into_other_modules(tmp_path: Path) -> None:
    """A pure-looking function calling a helper that reads the clock is skipped."""
    index = index_of(
        tmp_path,
        api="from pkg.helpers import stamp\ndef f(x):\n    return stamp() + x\n",
        helpers="import time\ndef stamp():\n    return time.monotonic()\n",
    )
    finding = analyse(index, "pkg.api", "f")
    assert finding is not None
    assert finding.where.startswith("pkg.helpers.stamp")


def test_sandbox_blocks_writes_only_while_active(tmp_path: Path) -> None:
    """Inside a sampled call a write raises; outside, the process is untouched."""
    sandbox = Sandbox()
    sandbox.install()
    target = tmp_path / "x.txt"
    with pytest.raises(SideEffectBlocked, match="file I/O"), sandbox.active():
        target.write_text("no")
    assert not target.exists()
    with pytest.raises(SideEffectBlocked, match="starts processes"), sandbox.active():
        os.system("true")
    target.write_text("yes")  # not active: allowed
    with sandbox.active():
        assert target.read_text() == "yes"  # reading is allowed
