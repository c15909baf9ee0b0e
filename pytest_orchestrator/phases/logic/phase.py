"""Phase 2, Logic: the call graph among Map's candidates, and the slices that fit the budget.

`prune` decides what the planner sees, in tiers, and records why for every slice:

0. **target** -- slices that define an identifier the command names, or that a stack-trace
   line points into (without either: the best-scored slice);
1. **caller** -- slices that call a target (a rename or a signature change must edit them);
2. **callee** -- what the targets call (the context needed to change them safely);
3. **mention** -- other slices that use a named identifier (imports, ``__all__``, docs);
4. **context** -- the rest, by score, down to a relevance floor.

Within a tier slices go best score first; each is kept if it fits what is left of the budget
(``input_tokens_per_step`` minus a reserve for the planner's own prompt), otherwise dropped as
"over budget" -- so when space runs out the least relevant go first. The call graph is
resolved across modules through the candidates' imports (`pytest_orchestrator.phases.map.graph`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pytest

from pytest_orchestrator.model import LogicResult, MapResult, RankedSlice
from pytest_orchestrator.phases.map.graph import ModuleIndex, Node, call_edges, resolve_imports
from pytest_orchestrator.phases.map.slicing import blob_sha1, decode, line_offsets
from pytest_orchestrator.tokens import estimate_tokens

if TYPE_CHECKING:
    from pytest_orchestrator.run import Run

#: Tokens of the per-step budget left for the planner's instructions and the command.
PROMPT_RESERVE: Final = 1000
#: Context slices scoring below this share of the best score are not worth their tokens.
RELEVANCE_FLOOR: Final = 0.2
_TIER_NAMES: Final = ("target", "caller", "callee", "mention", "context")


def slice_id(r: RankedSlice) -> str:
    """The call-graph id of a slice: ``path::symbol`` (module blocks get their line)."""
    s = r.slice
    return f"{s.path}::{s.symbol}" + (f"@{s.start_line}" if s.kind == "module" else "")


def read_texts(root: Path, slices: Iterable[RankedSlice]) -> dict[str, str]:
    """The text of each slice, read from ``root`` (each file once)."""
    by_path: dict[str, list[RankedSlice]] = {}
    for r in slices:
        by_path.setdefault(r.slice.path, []).append(r)
    texts: dict[str, str] = {}
    for path, group in by_path.items():
        try:
            raw = (root / path).read_bytes()
        except OSError:
            continue
        offsets = line_offsets(raw)
        last = len(offsets) - 1
        for r in group:
            a = offsets[min(r.slice.start_line - 1, last)]
            b = offsets[min(r.slice.end_line, last)]
            texts[slice_id(r)] = decode(raw[a:b])
    return texts


def build_call_graph(
    root: Path, slices: list[RankedSlice]
) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """Caller -> callee edges among ``slices`` and the texts they were read from."""
    texts = read_texts(root, slices)
    index = ModuleIndex.build({r.slice.path for r in slices})
    file_text: dict[str, list[str]] = {}
    for r in slices:
        file_text.setdefault(r.slice.path, []).append(texts.get(slice_id(r), ""))
    imports = {
        path: resolve_imports("\n".join(parts), path, index) for path, parts in file_text.items()
    }
    nodes = [
        Node(
            id=slice_id(r),
            path=r.slice.path,
            name=r.slice.symbol.rsplit(".", 1)[-1],
            is_method=r.slice.kind == "method",
        )
        for r in slices
    ]
    return call_edges(nodes, texts, imports), texts


def _tiers(slices: list[RankedSlice], edges: list[tuple[str, str]]) -> dict[str, tuple[int, str]]:
    """slice id -> (tier, why it is in that tier)."""
    ids = {slice_id(r): r for r in slices}
    targets = {
        slice_id(r): (
            "defines a named identifier"
            if r.components.get("definition", 0) > 0
            else "a stack-trace line points here"
        )
        for r in slices
        if r.components.get("definition", 0) > 0 or r.components.get("trace", 0) > 0
    }
    if not targets and slices:
        targets = {slice_id(slices[0]): "best match for the command"}
    out: dict[str, tuple[int, str]] = {sid: (0, why) for sid, why in targets.items()}
    for caller, callee in edges:
        if callee in targets and caller not in out:
            out[caller] = (1, f"calls {callee}")
    for caller, callee in edges:
        if caller in targets and callee not in out:
            out[callee] = (2, f"called by {caller}")
    for r in slices:
        sid = slice_id(r)
        if sid not in out and r.components.get("identifier", 0) > 0:
            out[sid] = (3, "uses a named identifier")
    for sid in ids:
        out.setdefault(sid, (4, "by score"))
    return out


def prune(
    candidates: MapResult,
    root: Path,
    *,
    budget_tokens: int,
    reserve: int = PROMPT_RESERVE,
    floor: float = RELEVANCE_FLOOR,
) -> LogicResult:
    """Keep what the change must touch plus the context that fits; say why for each slice."""
    slices = list(candidates.slices)
    edges, _ = build_call_graph(root, slices)
    tiers = _tiers(slices, edges)
    budget = max(0, budget_tokens - reserve)
    top = max((r.score for r in slices), default=0.0)
    order = sorted(
        range(len(slices)), key=lambda i: (tiers[slice_id(slices[i])][0], -slices[i].score, i)
    )
    decided: dict[int, tuple[bool, str]] = {}
    heads: dict[int, RankedSlice] = {}
    used = 0
    for i in order:
        r = slices[i]
        tier, why = tiers[slice_id(r)]
        label = f"{_TIER_NAMES[tier]}: {why}"
        if tier == len(_TIER_NAMES) - 1 and r.score < floor * top:
            decided[i] = (
                False,
                f"{label}; below the relevance floor ({r.score:.2f} < {floor:.0%} of {top:.2f})",
            )
        elif used + r.slice.tokens > budget:
            over = f"{label}; over budget ({r.slice.tokens} tokens, {budget - used} left)"
            head = _head(root, r, min(budget - used, budget // 2)) if tier == 0 else None
            if head is not None:
                heads[i] = head.model_copy(
                    update={"kept": True, "reason": f"{label}; the head of a slice too large"}
                )
                used += head.slice.tokens
                over += (
                    f"; its first lines ({head.slice.start_line}-{head.slice.end_line}) are kept"
                )
            decided[i] = (False, over)
        else:
            used += r.slice.tokens
            decided[i] = (True, label)
    out: list[RankedSlice] = []
    for i, r in enumerate(slices):
        out.append(r.model_copy(update={"kept": decided[i][0], "reason": decided[i][1]}))
        if i in heads:
            out.append(heads[i])
    return LogicResult(slices=out, edges=edges, budget_tokens=budget, used_tokens=used)


def _head(root: Path, r: RankedSlice, max_tokens: int) -> RankedSlice | None:
    """The first lines of a target slice too large for the budget (signature, docstring, ...).

    The planner must see the definition it is asked to change; when all of it does not fit,
    its head does. ``None`` when not even the first line fits.
    """
    try:
        raw = (root / r.slice.path).read_bytes()
    except OSError:
        return None
    offsets = line_offsets(raw)
    start = r.slice.start_line
    end = start - 1
    tokens = 0
    while end < r.slice.end_line - 1:
        candidate = estimate_tokens(decode(raw[offsets[start - 1] : offsets[end + 1]]))
        if candidate > max_tokens:
            break
        end, tokens = end + 1, candidate
    if end < start:
        return None
    chunk = raw[offsets[start - 1] : offsets[end]]
    head = r.slice.model_copy(update={"end_line": end, "hash": blob_sha1(chunk), "tokens": tokens})
    return r.model_copy(update={"slice": head})


def format_ranking(result: LogicResult, limit: int = 20) -> list[str]:
    """The dry-run listing: ranked files, then ranked slices with kept/dropped and why."""
    lines: list[str] = []
    files: dict[str, list[RankedSlice]] = {}
    for r in result.slices:
        files.setdefault(r.slice.path, []).append(r)
    kept = result.kept
    lines.append(
        f"ranked files ({len(files)}), kept {len(kept)} of {len(result.slices)} slices, "
        f"{result.used_tokens}/{result.budget_tokens} tokens:"
    )
    for n, (path, group) in enumerate(list(files.items())[:limit], 1):
        k = sum(r.kept for r in group)
        lines.append(f"  {n:>3}. {group[0].score:7.3f}  {path}  ({k}/{len(group)} slices kept)")
    lines.append("ranked slices:")
    for n, r in enumerate(result.slices[:limit], 1):
        s = r.slice
        mark = "kept" if r.kept else "drop"
        top = sorted(r.components.items(), key=lambda kv: -kv[1])[:3]
        parts = " ".join(f"{k}={v:.2f}" for k, v in top if v > 0)
        lines.append(
            f"  {n:>3}. {r.score:7.3f} [{mark}] {s.path}::{s.symbol} "
            f"L{s.start_line}-{s.end_line} ~{s.tokens}t  {parts}  -- {r.reason}"
        )
    if len(result.slices) > limit:
        lines.append(f"  ... {len(result.slices) - limit} more in slices.json")
    return lines


def prune_cached(
    candidates: MapResult,
    root: Path,
    cache_dir: Path,
    *,
    budget_tokens: int,
    tree_id: str | None,
    fresh: bool = False,
) -> LogicResult:
    """`prune`, or its result stored for these candidates on the clean tree ``tree_id``
    (`pytest_orchestrator.phases.map.result_cache`; None: not cached). ``fresh``: read no
    earlier result (store this one)."""
    from pytest_orchestrator.phases.map.result_cache import ResultCache, logic_key

    if tree_id is None:
        return prune(candidates, root, budget_tokens=budget_tokens)
    results = ResultCache(cache_dir)
    try:
        key = logic_key(tree_id, candidates, budget_tokens)
        stored = None if fresh else results.get_logic(key)
        if stored is not None:
            return stored
        result = prune(candidates, root, budget_tokens=budget_tokens)
        results.put_logic(key, result)
        return result
    finally:
        results.close()


@pytest.hookimpl(trylast=True)
def pytest_orchestrator_logic(run: Run, candidates: MapResult) -> LogicResult:
    """The default Logic: `prune` Map's candidates to the per-step input-token budget, or
    its stored result when the session knows the worktree's clean tree (``run.base_tree``;
    unknown, Logic asks git nothing and prunes) and Logic saw these candidates on it before."""
    return prune_cached(
        candidates,
        run.worktree,
        run.settings.cache_dir,
        budget_tokens=run.settings.budgets.input_tokens_per_step,
        tree_id=run.base_tree,
        fresh=run.settings.fresh,
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m pytest_orchestrator.phases.logic.phase "command" [--root DIR] [--json FILE]``:
    run only Map and Logic on a tree (read-only) and print the ranking."""
    import argparse
    import json

    from pytest_orchestrator.phases.map.phase import map_repository
    from pytest_orchestrator.plan import Budgets

    parser = argparse.ArgumentParser(prog="python -m pytest_orchestrator.phases.logic.phase")
    parser.add_argument("command")
    parser.add_argument("--root", type=Path, default=Path.cwd())
    default_budget = Budgets.model_fields["input_tokens_per_step"].default
    parser.add_argument("--budget", type=int, default=default_budget)
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--json", type=Path, help="also write the slices.json content here")
    args = parser.parse_args(argv)
    lines: list[str] = []
    mapped = map_repository(args.root, args.command, report=lines.append)
    result = prune(mapped, args.root, budget_tokens=args.budget)
    lines += format_ranking(result, args.limit)
    stats = ", ".join(f"{k}={v:g}" for k, v in mapped.stats.items())
    lines.append(f"map: {stats}")
    if args.json is not None:
        args.json.write_text(json.dumps(result.model_dump(mode="json"), indent=2) + "\n")
    print("\n".join(lines))  # a command-line entry point: stdout is its output
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
