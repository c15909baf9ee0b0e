"""Text mentions of a renamed symbol: docs, docstrings, comments, doctests, string literals.

rope renames code. What readers see is prose: a README telling users to set
``tabulate.WIDE_CHARS_MODE``, ``.. autofunction:: parameterize``, a docstring's
``:func:`add```. After rope has run, the old name is left only in such text, and a PR that
says "renamed everywhere" while the docs still name the old symbol is wrong twice.

A mention is updated only when it is clearly the symbol:

- it is a whole identifier (``add`` in ``add_all`` or ``.added`` is not a mention);
- a qualifier before it fits (``calc.add``, ``Meter.reading``); another qualifier
  (``operator.add``, ``np.add``) names another object and is left, with that reason;
- it reads as code: in backticks or a Sphinx role, on a Sphinx ``auto*`` directive, on a
  doctest line, in a fenced code block, followed by ``(``, qualified — or the name itself
  cannot be an English word (it has an underscore, a digit or an inner capital). A plain
  word in prose ("add the numbers") is left, with that reason.

String literals in code that are not docstrings (``getattr(x, "add")``, ``mock.patch``
targets) are never changed: they are reported for review. ``__all__`` entries are code,
and updated.
"""

from __future__ import annotations

import ast
import io
import re
import subprocess
import tokenize
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from pytest_orchestrator.repo.files import atomic_write

TEXT_GLOBS: Final = ("*.md", "*.rst", "*.txt", "*.py", "*.pyi")
_DIRECTIVE: Final = re.compile(r"^\s*\.\.\s+(?:auto\w+|py:\w+)::")
_DOCTEST: Final = re.compile(r"^\s*(?:>>>|\.\.\.)\s")
_FENCE: Final = re.compile(r"^\s*(```|~~~)")


@dataclass(frozen=True)
class Mention:
    path: str
    line: int
    text: str
    """The line, stripped (shortened)."""
    why: str = ""
    """Why it was left (empty for an updated mention)."""


@dataclass
class Mentions:
    """What the text pass did: mentions updated, mentions left on purpose (with why), and
    string literals naming the symbol, left for a reviewer."""

    updated: list[Mention] = field(default_factory=list)
    left: list[Mention] = field(default_factory=list)
    literals: list[Mention] = field(default_factory=list)

    @property
    def files(self) -> list[str]:
        return sorted({m.path for m in self.updated})

    def as_data(self) -> dict[str, list[dict[str, object]]]:
        def rows(ms: list[Mention]) -> list[dict[str, object]]:
            return [{"path": m.path, "line": m.line, "text": m.text, "why": m.why} for m in ms]

        return {
            "updated": rows(self.updated),
            "left": rows(self.left),
            "literals": rows(self.literals),
        }


@dataclass(frozen=True)
class Target:
    """The renamed symbol as text sees it."""

    old: str
    new: str
    qualifiers: frozenset[str]
    """Dotted qualifiers that name the symbol's home: module paths and their suffixes,
    package prefixes (re-exports), the class for a method."""
    method: bool = False

    def qualifier_fits(self, qualifier: str) -> bool:
        if qualifier in self.qualifiers:
            return True
        return self.method and qualifier in ("self", "cls")


def target_for(old: str, new: str, module: str, owner: str = "") -> Target:
    """The `Target` of ``owner.old`` (``owner`` = the class, for a method) in ``module``."""
    parts = module.split(".") if module else []
    quals: set[str] = set()
    if owner:
        quals |= {owner, *(".".join([*parts[i:], owner]) for i in range(len(parts)))}
    else:
        quals |= {".".join(parts[i:]) for i in range(len(parts))}  # suffixes: keys, pkg.keys
        quals |= {".".join(parts[:i]) for i in range(1, len(parts))}  # packages re-export
    return Target(old, new, frozenset(q for q in quals if q), method=bool(owner))


def distinctive(name: str) -> bool:
    """A name that cannot be an English word: ``snake_case``, ``CamelCase``, ``v2``."""
    return "_" in name.strip("_") or any(c.isdigit() for c in name) or name[1:] != name[1:].lower()


def _pattern(old: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w])(?P<qual>(?:[A-Za-z_]\w*\.)*)" + re.escape(old) + r"(?![\w])")


def rewrite_text(
    text: str, target: Target, *, code_like: bool, path: str, first_line: int, out: Mentions
) -> str:
    """``text`` with every fitting mention of ``target.old`` replaced; what was left and why
    goes to ``out``. ``code_like``: the whole text reads as code (a doctest, a code block)."""
    pattern = _pattern(target.old)
    lines = text.split("\n")
    fenced = False
    for i, line in enumerate(lines):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not pattern.search(line):
            continue
        line_code = code_like or fenced or bool(_DIRECTIVE.match(line) or _DOCTEST.match(line))
        left: list[str] = []
        pieces, last = [], 0
        for m in pattern.finditer(line):
            why = _unfit(m, line, target, line_code=line_code)
            pieces += [line[last : m.start()], m.group(0) if why else m["qual"] + target.new]
            last = m.end()
            if why:
                left.append(why)
        new_line = "".join([*pieces, line[last:]])
        where = Mention(path, first_line + i, line.strip()[:160])
        if new_line != line:
            out.updated.append(where)
            lines[i] = new_line
        for why in dict.fromkeys(left):
            out.left.append(Mention(where.path, where.line, where.text, why))
    return "\n".join(lines)


def _unfit(m: re.Match[str], line: str, target: Target, *, line_code: bool) -> str:
    """Why the match ``m`` in ``line`` is not to be updated; "" when it is the symbol."""
    qual = m["qual"].rstrip(".")
    if qual and not target.qualifier_fits(qual):
        return f"qualified by `{qual}`: another object"
    before, after = line[: m.start() + len(m["qual"])], line[m.end() :]
    in_ticks = before.count("`") % 2 == 1
    if line_code or in_ticks or after.startswith("(") or qual or distinctive(target.old):
        return ""
    return f"`{target.old}` as a plain word in prose: may not mean the symbol"


def _docstring_nodes(tree: ast.AST) -> set[tuple[int, int]]:
    """(line, col) of every docstring and ``__all__`` string: the strings that are not data."""
    found: set[tuple[int, int]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0].value if node.body and isinstance(node.body[0], ast.Expr) else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.add((first.lineno, first.col_offset))
    return found


def _all_strings(tree: ast.AST) -> set[tuple[int, int]]:
    found: set[tuple[int, int]] = set()
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets, value = [node.target], node.value
        if value is not None and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in targets
        ):
            for const in ast.walk(value):
                if isinstance(const, ast.Constant) and isinstance(const.value, str):
                    found.add((const.lineno, const.col_offset))
    return found


def rewrite_python(text: str, target: Target, path: str, out: Mentions) -> str:
    """Comments and docstrings updated, ``__all__`` entries updated, other strings reported."""
    try:
        tree = ast.parse(text)
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (SyntaxError, tokenize.TokenError):
        return text
    docstrings, exported = _docstring_nodes(tree), _all_strings(tree)
    pattern = _pattern(target.old)
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    edits: list[tuple[int, int, str]] = []
    for tok in tokens:
        if tok.type not in (tokenize.COMMENT, tokenize.STRING) or not pattern.search(tok.string):
            continue
        begin = starts[tok.start[0] - 1] + tok.start[1]
        end = starts[tok.end[0] - 1] + tok.end[1]
        if tok.type == tokenize.STRING and tok.start in exported:
            if _literal(tok.string) == target.old:
                edits.append((begin, end, tok.string.replace(target.old, target.new)))
                out.updated.append(Mention(path, tok.start[0], tok.line.strip()[:160]))
            continue
        if tok.type == tokenize.STRING and tok.start not in docstrings:
            quals = (m["qual"].rstrip(".") for m in pattern.finditer(tok.string))
            if any(not q or target.qualifier_fits(q) for q in quals):
                why = "a string literal: data, not changed; check it by hand"
                out.literals.append(Mention(path, tok.start[0], tok.line.strip()[:160], why))
            continue
        new = rewrite_text(
            tok.string, target, code_like=False, path=path, first_line=tok.start[0], out=out
        )
        if new != tok.string:
            edits.append((begin, end, new))
    for begin, end, new in sorted(edits, reverse=True):
        text = text[:begin] + new + text[end:]
    return text


def _literal(token: str) -> object:
    try:
        return ast.literal_eval(token)
    except (ValueError, SyntaxError):
        return None


def files_with(root: Path, name: str, rg: str) -> list[str]:
    """Text and Python files under ``root`` naming ``name`` as a whole word (ripgrep, so
    ignored files stay ignored)."""
    globs = [arg for g in TEXT_GLOBS for arg in ("--glob", g)]
    proc = subprocess.run(
        [rg, "--files-with-matches", "--word-regexp", "--fixed-strings", *globs, "--", name, "."],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    return sorted(p.removeprefix("./") for p in proc.stdout.split())


def update(root: Path, target: Target, files: list[str], *, write: bool = True) -> Mentions:
    """Update the fitting mentions of ``target`` in ``files`` (after rope has renamed the
    code); return what was updated, left and reported."""
    out = Mentions()
    for rel in files:
        path = root / rel
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if rel.endswith((".py", ".pyi")):
            new = rewrite_python(text, target, rel, out)
        else:
            new = rewrite_text(text, target, code_like=False, path=rel, first_line=1, out=out)
        if write and new != text:
            atomic_write(path, new)
    return out


HISTORY: Final = re.compile(r"(?i)^(changelog|changes|history|news|release[-_ ]?notes)")
"""Files that record what was: an old module name there is history, not a stale mention."""


def module_pattern(old: str) -> re.Pattern[str]:
    """The dotted module ``old`` as a whole dotted name (``cachetools.func`` in
    ``cachetools.func.lru_cache`` or ``.. module:: cachetools.func``, never in
    ``cachetools.functools``); a top-level module only where it reads as a module: after
    ``import``/``from``, on a module directive or role, or followed by an attribute."""
    dotted = re.escape(old)
    if "." in old:
        return re.compile(rf"(?<![\w./-]){dotted}(?![\w])")
    reads_as_module = r"(?:(?<=import )|(?<=from )|(?<=module:: )|(?<=:mod:`)"
    return re.compile(rf"{reads_as_module}|(?<![\w./-])(?={dotted}\.\w)){dotted}(?![\w])")


def update_module(
    root: Path, old: str, new: str, rg: str, check: Callable[[str], object]
) -> Mentions:
    """After a module rename: its dotted name in docs (``.md``/``.rst``/``.txt``), docstrings
    and comments, written as the new one; history files (changelogs) left, with why."""
    out = Mentions()
    pattern = module_pattern(old)
    for rel in files_with(root, old.rsplit(".", 1)[-1], rg):
        path = root / rel
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if not pattern.search(text):
            continue
        if HISTORY.match(Path(rel).name):
            first = next(i for i, s in enumerate(text.splitlines(), 1) if pattern.search(s))
            out.left.append(Mention(rel, first, "", "a changelog: history, not changed"))
            continue
        if rel.endswith((".py", ".pyi")):
            new_text = _sub_in_prose(text, pattern, new, rel, out)
        else:
            lines = text.split("\n")
            for i, line in enumerate(lines):
                if pattern.search(line):
                    out.updated.append(Mention(rel, i + 1, line.strip()[:160]))
                    lines[i] = pattern.sub(new, line)
            new_text = "\n".join(lines)
        if new_text != text:
            check(rel)
            atomic_write(path, new_text)
    return out


def _sub_in_prose(text: str, pattern: re.Pattern[str], new: str, rel: str, out: Mentions) -> str:
    """``text`` with ``pattern`` replaced in its comments and docstrings only (the code is
    rope's; other strings are data)."""
    try:
        tree = ast.parse(text)
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (SyntaxError, tokenize.TokenError):
        return text
    docs = _docstring_nodes(tree)
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    edits = []
    for tok in tokens:
        prose = tok.type == tokenize.COMMENT or (tok.type == tokenize.STRING and tok.start in docs)
        if prose and pattern.search(tok.string):
            begin = starts[tok.start[0] - 1] + tok.start[1]
            end = starts[tok.end[0] - 1] + tok.end[1]
            edits.append((begin, end, pattern.sub(new, tok.string)))
            out.updated.append(Mention(rel, tok.start[0], tok.line.strip()[:160]))
    for begin, end, replacement in sorted(edits, reverse=True):
        text = text[:begin] + replacement + text[end:]
    return text
