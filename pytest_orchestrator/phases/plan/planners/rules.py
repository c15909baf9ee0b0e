"""The rules planner: offline and deterministic, for the commands it understands.

It plans the mechanical refactorings a team would trust offline, one sentence each: rename
a symbol ("Rename calculate_position_size to position_size", methods as ``Class.method``),
rename a module, move a definition to another module, add / rename / remove a parameter,
inline, extract. Each plan is one mutate step between a search and the lint and Monte Carlo
checks. Anything else is refused with a message that names the planner that can do it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Final, final

from pytest_orchestrator.errors import EditError, PlannerRefused
from pytest_orchestrator.phases.execute import refactor, reshape, signature
from pytest_orchestrator.phases.plan.planners import Failure, PlanContext
from pytest_orchestrator.plan import Plan, Step
from pytest_orchestrator.repo.layout import source_roots
from pytest_orchestrator.settings import Settings

_NAME: Final = r"[`'\"\u201c\u2018]?(?P<{}>[A-Za-z_](?:[\w.]*\w)?)[`'\"\u201d\u2019]?"
_PATH: Final = r"[`'\"]?(?P<{}>[\w./-]+?)[`'\"]?"


def _name(group: str) -> str:
    return _NAME.format(group)


RENAME: Final = re.compile(
    r"(?i:\brename)\s+(?i:(?:the\s+)?(?:function|class|method|constant|symbol|variable)\s+)?"
    r"[`'\"]?(?P<old>[A-Za-z_][\w.]*)[`'\"]?\s+(?i:to|into|as|->)\s+"
    r"[`'\"]?(?P<new>[^\s,;`'\"]+)[`'\"]?"
)
RENAME_MODULE: Final = re.compile(
    r"(?i:\brename\s+(?:the\s+)?(?P<kind>module|package)\s+)"
    + _PATH.format("old")
    + r"\s+(?i:to|into|as|->)\s+"
    + _name("new")
)
MOVE: Final = re.compile(
    r"(?i:\bmove\s+(?:the\s+)?(?:(?:function|class|constant|symbol|variable)\s+)?)"
    + _name("symbol")
    + r"(?:\s+(?i:from)\s+"
    + _PATH.format("source")
    + r")?"
    + r"\s+(?i:to|into)\s+(?i:(?:the\s+)?(?:new\s+)?module\s+)?"
    + _PATH.format("to")
    + r"(?=$|[\s,;!?]|\.(?:\s|$))"
    + r"(?P<reexport>.*?(?i:re-?export))?"
)
ADD_PARAM: Final = re.compile(
    r"(?i:\badd\s+(?:an?\s+)?(?:optional\s+)?(?:parameter|argument|param|arg)\s+)"
    + _name("param")
    + r"\s*(?:=\s*|(?i:with\s+(?:a\s+)?default(?:\s+of)?\s+))"
    + r"(?P<default>[^\s,;]+?)\s+(?i:to)\s+"
    + _name("symbol")
)
RENAME_PARAM: Final = re.compile(
    r"(?i:\brename\s+(?:the\s+)?(?:parameter|argument|param|arg)\s+)"
    + _name("param")
    + r"\s+(?:(?i:of|in)\s+"
    + _name("symbol")
    + r"\s+)?(?i:to|into|as|->)\s+"
    + _name("new")
    + r"(?:\s+(?i:in|of)\s+"
    + _name("symbol2")
    + r")?"
)
REMOVE_PARAM: Final = re.compile(
    r"(?i:\b(?:remove|drop|delete)\s+(?:the\s+)?(?:unused\s+)?(?:parameter|argument|param|arg)\s+)"
    + _name("param")
    + r"\s+(?i:from|of|in)\s+"
    + _name("symbol")
)
INLINE: Final = re.compile(
    r"(?i:\binline\s+(?:the\s+)?(?:(?:function|variable|constant|method)\s+)?)"
    + _name("symbol")
    + r"(?:\s+(?i:in|inside|within)\s+"
    + _name("within")
    + ")?"
)
EXTRACT: Final = re.compile(
    r"(?i:\bextract\s+)(?:(?i:lines?\s+)(?P<start>\d+)\s*(?:-|\u2013|(?i:to|through))\s*(?P<end>\d+)"
    r"|(?i:(?:the\s+)?block\s+)[`'\"]?(?P<block>[\w ]+?)[`'\"]?)"
    r"\s+(?i:of|in|from)\s+"
    + _PATH.format("where")
    + r"\s+(?i:into|as|to)\s+"
    + r"(?i:(?:a\s+)?(?:new\s+)?(?:function|method)\s+(?:named\s+|called\s+)?)?"
    + _name("new")
)
UNDERSTOOD: Final = (
    "'rename OLD to NEW', 'rename module M to NEW', 'move NAME to path/module.py "
    "[and keep a re-export]', 'add parameter P=DEFAULT to F', 'rename parameter P of F to NEW', "
    "'remove unused parameter P from F', 'inline NAME', 'extract lines A-B of FILE into NAME' "
    "or 'extract block B in F into NAME'"
)


def sentence_name(word: str) -> str:
    """A name as written in a sentence, without the sentence's own punctuation or quotes:
    "Rename underscore to snake_case." names ``snake_case``."""
    return word.rstrip(".!?:)]}\u201d\u2019\"'`").lstrip("(\u201c\u2018\"'`")


@final
class RulesPlanner:
    name = "rules"
    can_replan = False
    """A deterministic plan that failed will fail the same way again."""

    def __init__(self) -> None:
        self.notes: list[str] = []
        self._parsed: dict[str, tuple[Step, str, str]] = {}
        """Command -> its parse. ``can_plan`` and ``plan`` see the same base (read in place,
        then from the worktree reset to it), so ``plan`` reuses ``can_plan``'s parse: on a
        large tree finding a definition is a ripgrep pass and a parse of the files it names."""

    @classmethod
    def from_settings(cls, settings: Settings) -> RulesPlanner:
        return cls()

    def can_plan(self, context: PlanContext) -> None:
        """The command is one this planner understands, about code that exists: planning is
        cheap and deterministic, so planning is the check."""
        self._parse(context)

    def plan(self, context: PlanContext) -> list[Plan]:
        step, summary, needle = self._parse(context)
        return [_plan(context, step, summary, needle)]

    def _parse(self, context: PlanContext) -> tuple[Step, str, str]:
        command = context.command
        if command in self._parsed:
            return self._parsed[command]
        for parse in (
            _rename_module,
            _move,
            _signature,
            _inline,
            _extract,
            _rename,
        ):
            found = parse(context.worktree, command)
            if found is not None:
                self._parsed[command] = found
                return found
        raise PlannerRefused(
            f"the rules planner does not understand {command!r}; it handles {UNDERSTOOD}. "
            "This command needs an LLM planner: set ANTHROPIC_API_KEY or pass "
            "--orchestrate-planner=anthropic (or run a plan of your own with "
            "--orchestrate-plan FILE)"
        )

    def replan(self, context: PlanContext, failure: Failure) -> list[Plan]:
        return []


Parsed = tuple[Step, str, str] | None
"""The mutate step, the plan's summary, and the name the ``find`` step searches for."""


def _plan(context: PlanContext, step: Step, summary: str, needle: str) -> Plan:
    """search, the one mutate step, then lint and Monte Carlo: behaviour must be kept."""
    steps = [
        Step(
            id="find",
            pool="scan",
            op="search",
            args={"pattern": rf"\b{re.escape(needle)}\b"},
            why=f"every mention of {needle}",
        ),
        step,
        Step(
            id="lint",
            pool="scan",
            op="lint",
            needs=[step.id],
            why="every changed file still compiles",
        ),
        Step(
            id="montecarlo",
            pool="scan",
            op="montecarlo",
            needs=[step.id],
            why="behaviour at scale is unchanged",
        ),
    ]
    return Plan(
        command=context.command,
        planner="rules",
        summary=summary + " Behaviour is unchanged.",
        steps=steps,
        budgets=context.budgets,
        behaviour_preserving=True,
    )


def _mutate(op: str, args: Mapping[str, object], why: str, step_id: str = "") -> Step:
    return Step(
        id=step_id or op.split("_")[0],
        pool="mutate",
        op=op,
        needs=["find"],
        args={k: v for k, v in args.items() if v is not None},
        why=why,
    )


def _rename(root: Path, command: str) -> Parsed:
    match = RENAME.search(command)
    if match is None:
        return None
    old, new = sentence_name(match["old"]), sentence_name(match["new"])
    definition = refactor.locate(root, old, new)
    step = _mutate(
        "rename_symbol",
        {"symbol": definition.qualname, "new_name": new, "path": definition.path},
        f"rename the definition in {definition.path} and every reference",
    )
    stub = f" and its stub `{definition.stub}`" if definition.stub else ""
    summary = (
        f"Rename `{definition.qualname}` (defined in `{definition.path}`{stub}) to `{new}` "
        "everywhere it is used: definition, imports, call sites, tests, and the text "
        "mentions PR.md lists."
    )
    return step, summary, old.split(".")[-1]


def _rename_module(root: Path, command: str) -> Parsed:
    match = RENAME_MODULE.search(command)
    if match is None:
        return None
    old, new = sentence_name(match["old"]), sentence_name(match["new"]).removesuffix(".py")
    path = _module_path(root, old)
    step = _mutate(
        "rename_module",
        {"path": path, "new_name": new},
        f"rename {path}; every import follows",
        "rename",
    )
    return (
        step,
        f"Rename the {match['kind'].lower()} `{path}` to `{new}`; every import follows.",
        old.split(".")[-1].removesuffix(".py"),
    )


def _module_path(root: Path, name: str) -> str:
    """``calc``, ``calc.py``, ``pkg.util`` or ``pkg/util`` -> the file or folder it names."""
    if (root / name).exists():
        return name
    dotted = name.removesuffix(".py").replace(".", "/")
    candidates = [dotted + ".py", dotted]
    for source in source_roots(root):
        candidates += [f"{source}/{dotted}.py", f"{source}/{dotted}"]
    for rel in candidates:
        if (root / rel).is_file() or (root / rel / "__init__.py").is_file():
            return rel
    raise EditError(f"no module or package {name!r} in the repository")


def _move(root: Path, command: str) -> Parsed:
    match = MOVE.search(command)
    if match is None:
        return None
    symbol, to = sentence_name(match["symbol"]), sentence_name(match["to"])
    if not to.endswith(".py"):
        to = to.replace(".", "/") + ".py"
    source = _module_path(root, sentence_name(match["source"])) if match["source"] else None
    reexport = bool(match["reexport"])
    definition = reshape.check_move(root, symbol, to, source, reexport=reexport)
    step = _mutate(
        "move_symbol",
        {"symbol": definition.qualname, "to": to, "path": definition.path, "reexport": reexport},
        f"move {definition.qualname} out of {definition.path}; imports follow",
        "move",
    )
    kept = " A re-export stays in the old module." if reexport else ""
    return (
        step,
        (
            f"Move `{definition.qualname}` from `{definition.path}` to `{to}`, every "
            f"import updated.{kept}"
        ),
        definition.qualname,
    )


SIGNATURE: Final = (
    (
        "add",
        ADD_PARAM,
        "add {param}={default}; existing calls keep their meaning",
        "Add the parameter `{param}={default}` to `{symbol}` (`{path}`); no call site changes.",
    ),
    (
        "rename",
        RENAME_PARAM,
        "rename the parameter; calls passing it by keyword follow",
        "Rename the parameter `{param}` of `{symbol}` to `{new_name}`; calls passing it by "
        "keyword follow.",
    ),
    (
        "remove",
        REMOVE_PARAM,
        "remove the unused parameter; call sites drop the argument",
        "Remove the unused parameter `{param}` of `{symbol}`; call sites drop the argument.",
    ),
)
"""The signature changes, in the order they are tried: action, sentence, the step's why and
the plan's summary (formatted with the step's args)."""


def _signature(root: Path, command: str) -> Parsed:
    for action, pattern, why, summary in SIGNATURE:
        match = pattern.search(command)
        if match is None or not (match["symbol"] or match.groupdict().get("symbol2")):
            continue
        symbol = sentence_name(match["symbol"] or match["symbol2"])
        param = sentence_name(match["param"])
        if action == "remove":  # every call site read now: refused before anything runs
            definition = signature.plan_removal(root, symbol, param, None).definition
        else:
            definition = refactor.locate(root, symbol, "_orchestrate_placeholder")
        extra = match.groupdict()
        args: dict[str, object] = {"symbol": definition.qualname, "action": action}
        args |= {"param": param, "path": definition.path}
        if extra.get("new"):
            args["new_name"] = sentence_name(extra["new"])
        if extra.get("default"):
            args["default"] = extra["default"].strip("`")
        step = _mutate("change_signature", args, why.format(**args), "signature")
        return step, summary.format(**args), definition.qualname.split(".")[-1]
    return None


def _inline(root: Path, command: str) -> Parsed:
    match = INLINE.search(command)
    if match is None:
        return None
    symbol = sentence_name(match["symbol"])
    if match["within"]:  # a local variable of a function
        function, *_ = reshape.check_local(root, symbol, sentence_name(match["within"]), None)
        args = {"symbol": symbol, "within": function.qualname, "path": function.path}
        what, path = f"the variable `{symbol}` of `{function.qualname}`", function.path
    else:
        definition = reshape.check_inline(root, symbol, None)
        args = {"symbol": definition.qualname, "path": definition.path}
        what, path = f"`{definition.qualname}`", definition.path
    step = _mutate("inline", args, f"inline {what} into every use", "inline")
    return step, f"Inline {what} (`{path}`) into every use and remove it.", symbol.split(".")[-1]


def _extract(root: Path, command: str) -> Parsed:
    match = EXTRACT.search(command)
    if match is None:
        return None
    new = sentence_name(match["new"])
    where = sentence_name(match["where"])
    args: dict[str, object] = {"new_name": new}
    if match["start"]:
        path = _module_path(root, where)
        start, end = int(match["start"]), int(match["end"])
        args |= {"path": path, "start_line": start, "end_line": end}
        what = f"lines {match['start']}-{match['end']} of `{path}`"
    else:
        definition = refactor.locate(root, where, "_orchestrate_placeholder")
        path = definition.path
        block = match["block"].strip()
        start, end = reshape.block_lines(root, path, definition.qualname, block)
        args |= {"path": path, "symbol": definition.qualname, "block": block}
        what = f"the block `# {block}` of `{definition.qualname}`"
    reshape.check_extract(root, path, start, end, new)  # refused now, not after the baseline
    step = _mutate("extract", args, f"extract {what} into {new}", "extract")
    return step, f"Extract {what} into a new function `{new}`.", new
