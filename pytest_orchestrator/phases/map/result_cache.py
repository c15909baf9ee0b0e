"""Map's and Logic's results kept across runs: a repeated command costs a lookup.

On a clean git tree Map is a function of the tree's content (its tree id), the command, what
the memory recalls for that command (`pytest_orchestrator.phases.map.memory`) and the code
that maps; Logic is a function of the tree, Map's result, the per-step token budget and the
code. So those, and nothing else, key the results here:

- the tree id (a dirty tree has none, and is never cached);
- the command, exactly; for Logic, the SHA-1 of Map's ranked slices as JSON (whatever Map
  made them, a conftest's included) and the budget;
- for Map, the memory's recall for the command (a green run that records a choice changes
  the key of every similar command, and only theirs);
- `code_version`: the SHA-1 of the package's own source files, so any change of the code
  (an upgrade, an edit of an editable install) is a miss, plus `SCHEMA_VERSION` and the
  interpreter's version (the slicer parses with its ``ast``).

A cache is never needed for correctness: entries live in ``results.sqlite`` of the cache dir,
through the search cache's store (zlib-compressed JSON, at most `MAX_ENTRIES`, the least
recently written evicted first; a corrupt or foreign file is rebuilt), and an entry that does
not decode into the result it should be is a miss, overwritten by the result made again.
``--orchestrate-fresh`` reads nothing here (and stores what it made).
"""

from __future__ import annotations

import hashlib
import sys
from functools import lru_cache
from pathlib import Path
from typing import Final

from pydantic import ValidationError

from pytest_orchestrator.model import LogicResult, MapResult
from pytest_orchestrator.phases.map.search_cache import SearchCache, search_key

FILENAME: Final = "results.sqlite"
#: 1: {"map": MapResult, "reports": [line, ...]} and {"logic": LogicResult}.
SCHEMA_VERSION: Final = 1
#: Entries kept (a Map result is some 30 KB compressed).
MAX_ENTRIES: Final = 200
_PACKAGE: Final = Path(__file__).resolve().parents[2]


@lru_cache(maxsize=1)
def code_version(package: Path = _PACKAGE) -> str:
    """SHA-1 of every source file of ``package`` (path and bytes, in path order)."""
    digest = hashlib.sha1(usedforsecurity=False)
    for path in sorted(p for p in package.rglob("*") if p.suffix in (".py", ".json")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _key(tree: str, what: str, *parts: object) -> str:
    return search_key(tree, what, SCHEMA_VERSION, code_version(), sys.version, *parts)


def map_key(tree: str, command: str, recalled: dict[tuple[str, str], float]) -> str:
    """The key of Map's result for ``command`` on ``tree`` with the memory's ``recalled``."""
    return _key(tree, "map", command, sorted([*k, v] for k, v in recalled.items()))


def logic_key(tree: str, candidates: MapResult, budget_tokens: int) -> str:
    """The key of Logic's result for ``candidates`` (Map's result) on ``tree``: its slices
    (what Logic reads of it; not the statistics, whose timings differ run to run)."""
    slices = candidates.model_dump_json(include={"slices"})
    digest = hashlib.sha1(slices.encode(), usedforsecurity=False)
    return _key(tree, "logic", digest.hexdigest(), budget_tokens)


class ResultCache:
    """Map and Logic results by `map_key` / `logic_key`; ``None`` directory: in memory."""

    def __init__(self, directory: Path | None) -> None:
        if directory is None:
            self._store = SearchCache(None, max_entries=MAX_ENTRIES)
        else:
            self._store = SearchCache.open(directory, FILENAME, max_entries=MAX_ENTRIES)

    def close(self) -> None:
        self._store.close()

    def get_map(self, key: str) -> tuple[MapResult, list[str]] | None:
        """Map's stored result and the lines it reported, or None."""
        entry = self._store.get(key)
        try:
            result = MapResult.model_validate(entry["map"])
            reports = [str(line) for line in entry["reports"]]
        except (TypeError, KeyError, ValidationError):  # None, or not what was stored
            return None
        return result, reports

    def put_map(self, key: str, result: MapResult, reports: list[str]) -> None:
        self._store.put(key, {"map": result.model_dump(mode="json"), "reports": reports})

    def get_logic(self, key: str) -> LogicResult | None:
        entry = self._store.get(key)
        try:
            return LogicResult.model_validate(entry["logic"])
        except (TypeError, KeyError, ValidationError):
            return None

    def put_logic(self, key: str, result: LogicResult) -> None:
        self._store.put(key, {"logic": result.model_dump(mode="json")})
