"""What the model is shown: prompts built to fit a token budget, best material first.

A request is a fixed part (instructions, the op catalogue, tool schemas) plus material that
is trimmed to fit what is left of the step's input budget:

* the command, and on a replan the evidence of the failed attempt (failing tests with their
  messages and trimmed tracebacks, Monte Carlo counterexamples, the previous diff);
* the pruned slices, best-ranked first: whole bodies while they fit, then signatures only;
* the repository outline and the test layout.

Nothing from a file that `redact.SecretFiles` refuses is ever read. Slices and the evidence
of a failed attempt are redacted here, before they are trimmed — a cut through the middle of
a secret would leave a prefix no rule recognises — and every string is scrubbed again by
`llm.ModelClient` before it is sent. Functions here are pure: they take
texts and a budget and return texts, so the fitting rules are unit-testable.
"""

from __future__ import annotations

import ast
import difflib
import re
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

from pytest_orchestrator.phases.plan.redact import redact, redact_source
from pytest_orchestrator.tokens import estimate_tokens

if TYPE_CHECKING:
    from pytest_orchestrator.model import MonteCarloSummary
    from pytest_orchestrator.phases.plan.planners import Failure, PlanContext
    from pytest_orchestrator.phases.plan.redact import SecretFiles
    from pytest_orchestrator.plan import OpSpec

__all__ = [
    "EDIT_SYSTEM",
    "PLAN_SYSTEM",
    "BaseTree",
    "SliceView",
    "evidence_text",
    "locate_symbol",
    "nearest_match",
    "op_catalogue",
    "redact_diff",
    "render_plan_prompt",
    "render_slices",
    "trim_text",
]

PLAN_SYSTEM: Final = """\
You plan code changes for pytest-orchestrator. You receive a command, ranked code slices of the
repository, its outline and its test layout. Answer ONLY by calling the tool `submit_plan` with
a plan.json: a DAG of steps {id, pool, op, args, needs, why}.

Rules:
- pool "mutate" for ops that write files, "scan" for read-only ops; list dependencies in needs.
- To rename a symbol use `rename_symbol`. For any other code change use `edit` with
  {path, symbols, instruction}: `symbols` names the functions/classes the step changes (they are
  shown to a separate edit call, which writes the code), `instruction` says precisely what to do.
  One `edit` step per file; later edits to the same file `need` the earlier ones.
- Finish with `run_tests` (needing every mutate step); add `montecarlo` when behaviour must be
  preserved and set behaviour_preserving=true for refactorings (extract, move, rename).
- Paths are relative to the repository root. Keep the plan small.
"""

EDIT_SYSTEM: Final = """\
You write one code edit for pytest-orchestrator. You see the exact current text of the code the
step changes. Answer ONLY by calling `submit_edits` with a list of edits; each edit is either
  {"search": <exact current text, copied verbatim, unique in the file>, "replace": <new text>}
or {"symbol": <function or class name shown>, "replace": <its complete new definition>}.
Search text must match the file exactly (whitespace included); keep it short but unique. Add
new functions with a search/replace that includes a neighbouring line. Keep the code's style.
"""

_OMITTED: Final = "… {n} lines omitted …"


def trim_text(text: str, max_tokens: int) -> str:
    """``text`` cut to about ``max_tokens``, keeping its head and its tail (the useful ends)."""
    if max_tokens <= 0:
        return ""
    if estimate_tokens(text) <= max_tokens:
        return text
    lines = text.splitlines()
    if len(lines) <= 2:
        return text[: int(max_tokens * 2.5)] + " …"
    head, tail = [], []
    used = estimate_tokens(_OMITTED) + 1
    front, back = 0, len(lines) - 1
    take_head = True
    while front <= back:
        line = lines[front] if take_head else lines[back]
        cost = estimate_tokens(line) + 1
        if used + cost > max_tokens:
            break
        used += cost
        if take_head:
            head.append(line)
            front += 1
        else:
            tail.append(line)
            back -= 1
        take_head = not take_head if len(head) >= 3 else True
    omitted = back - front + 1
    if omitted <= 0:
        return text
    return "\n".join([*head, _OMITTED.format(n=omitted), *reversed(tail)])


def op_catalogue(ops: Mapping[str, OpSpec]) -> str:
    """One line per op: name, pool, argument names (``?`` = optional) and what it does."""
    lines = []
    for name, spec in sorted(ops.items()):
        fields = spec.args.model_fields
        args = ", ".join(f"{f}{'' if info.is_required() else '?'}" for f, info in fields.items())
        lines.append(f"- {name} [{spec.pool}] ({args}): {spec.doc}")
    return "\n".join(lines)


@dataclass(frozen=True)
class SliceView:
    """A slice as the model sees it: where it is and its text (whole or signature only)."""

    path: str
    symbol: str
    start_line: int
    end_line: int
    text: str
    score: float = 0.0


def _signature(text: str) -> str:
    lines = text.splitlines()
    kept: list[str] = []
    for line in lines:
        kept.append(line)
        if line.rstrip().endswith(":") and not line.lstrip().startswith("@"):
            break
    rest = len(lines) - len(kept)
    if rest > 0:
        indent = " " * (len(kept[-1]) - len(kept[-1].lstrip()) + 4)
        kept.append(f"{indent}...  # body omitted ({rest} lines)")
    return "\n".join(kept)


def render_slices(views: Iterable[SliceView], max_tokens: int) -> tuple[str, dict[str, int]]:
    """The slices, best first: bodies while they fit, then signatures; stats of what was shown."""
    out: list[str] = []
    used = 0
    stats = {"whole": 0, "signature": 0, "dropped": 0}
    for view in views:
        header = f"### {view.path}::{view.symbol} (lines {view.start_line}-{view.end_line})"
        for kind, body in (("whole", view.text), ("signature", _signature(view.text))):
            block = f"{header}\n```python\n{body}\n```"
            cost = estimate_tokens(block) + 2
            if used + cost <= max_tokens:
                out.append(block)
                used += cost
                stats[kind] += 1
                break
        else:
            stats["dropped"] += 1
    return "\n\n".join(out), stats


@dataclass
class BaseTree:
    """Files as they are at the base commit (``HEAD`` of the worktree), read-only.

    Every attempt starts from the base commit, so plans and edits are written against it —
    even on a replan, when the worktree may still hold the failed attempt's changes (the
    evidence shows those as a diff). Outside a git repository, or before its first commit,
    the files on disk are the base.
    """

    root: Path
    _texts: dict[str, str | None] = field(default_factory=dict, repr=False)
    _git: bool | None = field(default=None, repr=False)

    def read(self, path: str) -> str | None:
        """The base text of ``path``, or None when it does not exist there (or is not text)."""
        if path not in self._texts:
            self._texts[path] = self._read(path)
        return self._texts[path]

    def _read(self, path: str) -> str | None:
        if self._git is None:
            self._git = _git(self.root, "rev-parse", "--verify", "-q", "HEAD") is not None
        raw = _git(self.root, "show", f"HEAD:./{path}") if self._git else None
        if raw is None and not self._git:
            try:
                raw = (self.root / path).read_bytes()
            except OSError:
                return None
        if raw is None:
            return None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return None


def _git(root: Path, *args: str) -> bytes | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, check=False, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def slice_views(context: PlanContext, secrets: SecretFiles, base: BaseTree) -> list[SliceView]:
    """Logic's kept slices, best first, from the base tree, minus files that must not leave."""
    allowed = set(secrets.filter(sorted({r.slice.path for r in context.slices})))
    views = []
    for ranked in context.slices:
        if not ranked.kept or ranked.slice.path not in allowed:
            continue
        s = ranked.slice
        text = base.read(s.path)
        if text is None:
            continue
        body = redact_source(s.path, "\n".join(text.splitlines()[s.start_line - 1 : s.end_line]))
        views.append(SliceView(s.path, s.symbol, s.start_line, s.end_line, body, ranked.score))
    return views


def montecarlo_text(summary: MonteCarloSummary | None) -> str:
    """Monte Carlo counterexamples: the metrics that diverged between base and candidate."""
    if summary is None or not summary.diverged:
        return ""
    lines = [f"Monte Carlo (seed {summary.seed}) diverged:"]
    for d in summary.diverged:
        lines.append(f"- {d.simulation}.{d.metric}: base {d.base!r} vs candidate {d.candidate!r}")
    lines += [f"- note: {n}" for n in summary.notes[:5]]
    return "\n".join(lines)


def evidence_text(failure: Failure, montecarlo: MonteCarloSummary | None, max_tokens: int) -> str:
    """Why the last attempt failed, trimmed to ``max_tokens``: tests first, then the diff."""
    steps = ", ".join(f"{s.id}:{s.op}" for s in failure.plan.steps)
    parts = [
        f"Attempt {failure.attempt} failed. Its plan: {failure.plan.summary or '(no summary)'} "
        f"[{steps}]",
    ]
    evidence_budget = int(max_tokens * 0.55)
    evidence = _trim_tracebacks(redact(failure.evidence))
    parts.append("Failures:\n" + trim_text(evidence, evidence_budget))
    mc = montecarlo_text(montecarlo)
    if mc:
        parts.append(trim_text(mc, int(max_tokens * 0.15)))
    used = sum(estimate_tokens(p) for p in parts)
    if failure.diff.strip():
        parts.append(
            "Its diff:\n```diff\n"
            + trim_text(redact_diff(failure.diff), max_tokens - used - 12)
            + "\n```"
        )
    return trim_text("\n\n".join(parts), max_tokens)


_DIFF_FILE: Final = re.compile(r"^diff --git a/\S+ b/(?P<path>\S+)$", re.MULTILINE)


def redact_diff(diff: str) -> str:
    """A git diff redacted file by file, so a settings module's part is held to its rules."""
    starts = [(m.start(), m.group("path")) for m in _DIFF_FILE.finditer(diff)]
    if not starts:
        return redact(diff)
    parts = [redact(diff[: starts[0][0]])]
    for (start, path), (end, _next) in zip(starts, [*starts[1:], (len(diff), "")], strict=True):
        parts.append(redact_source(path, diff[start:end]))
    return "".join(parts)


def _trim_tracebacks(evidence: str, keep: int = 12) -> str:
    """Keep the last ``keep`` lines of each failure's traceback: where it broke, and why."""
    blocks: list[list[str]] = []
    for line in evidence.splitlines():
        if not line.startswith((" ", "\t", "E ", ">")) or not blocks:
            blocks.append([line])
        else:
            blocks[-1].append(line)
    out = []
    for block in blocks:
        if len(block) > keep + 1:
            block = [
                block[0],
                f"  … {len(block) - keep - 1} traceback lines omitted …",
                *block[-keep:],
            ]
        out.extend(block)
    return "\n".join(out)


def render_plan_prompt(
    command: str,
    *,
    slices: Sequence[SliceView],
    outline: Sequence[str],
    tests: Sequence[str],
    evidence: str,
    notes: Sequence[str],
    allowance: int,
) -> tuple[str, dict[str, int]]:
    """The planning request's user message, fitted to ``allowance`` tokens, and its stats."""
    head = [f"Command: {command}"]
    for note in notes:
        head.append(note)
    if evidence:
        head.append("## Previous attempt\n" + evidence)
    head_text = "\n\n".join(head)
    left = allowance - estimate_tokens(head_text) - 16
    outline_text = trim_text("\n".join(outline), max(0, min(int(left * 0.12), 400)))
    tests_text = trim_text("\n".join(tests), max(0, min(int(left * 0.06), 200)))
    left -= estimate_tokens(outline_text) + estimate_tokens(tests_text) + 24
    slices_text, stats = render_slices(slices, max(0, left))
    empty = "(none fit the budget)" if slices else "(Map found no code for this command)"
    body = [head_text, "## Slices (best first)\n" + (slices_text or empty)]
    body.append("## Repository outline\n" + (outline_text or "(omitted)"))
    body.append("## Tests\n" + (tests_text or "(omitted)"))
    return "\n\n".join(body), stats


# ---------------------------------------------------------------------------- edit support


def locate_symbol(source: str, qualname: str) -> tuple[int, int] | None:
    """1-based inclusive line range of ``qualname`` (decorators included), or None."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    nodes: Sequence[ast.stmt] = tree.body
    found: ast.stmt | None = None
    for part in qualname.split("."):
        found = next(
            (
                n
                for n in nodes
                if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                and n.name == part
            ),
            None,
        )
        if found is None:
            return None
        nodes = found.body if isinstance(found, ast.ClassDef) else []
    if found is None or found.end_lineno is None:
        return None
    start = min([found.lineno, *(d.lineno for d in getattr(found, "decorator_list", []))])
    return start, found.end_lineno


def nearest_match(text: str, search: str) -> tuple[int, float, str]:
    """Where ``text`` comes closest to ``search``: (first line, similarity 0..1, that text)."""
    lines = text.splitlines(keepends=True)
    want = search.splitlines(keepends=True) or [search]
    size = max(1, len(want))
    best = (1, 0.0, "")
    stripped_want = "".join(want).strip()
    for i in range(0, max(1, len(lines) - size + 1)):
        window = "".join(lines[i : i + size])
        matcher = difflib.SequenceMatcher(None, window.strip(), stripped_want, autojunk=False)
        if matcher.real_quick_ratio() <= best[1] or matcher.quick_ratio() <= best[1]:
            continue
        ratio = matcher.ratio()
        if ratio > best[1]:
            best = (i + 1, ratio, window)
    return best
