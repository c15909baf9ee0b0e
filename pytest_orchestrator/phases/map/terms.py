"""What a command is about: the search terms Map extracts from one sentence.

A command mixes prose with code: ``Rename calculate_position_size to position_size``,
``fix KeyError in wheel_sizing/kelly.py``, a pasted traceback, a quoted message. `extract`
pulls out, in that order of trust:

- identifiers: names that look like code (snake_case, camelCase, dotted, ``call()``);
- paths and module names: ``pkg/mod.py``, ``pkg.mod``, and stack-trace ``File "x.py", line 3``;
- quoted strings: ``"insufficient buying power"``, searched as phrases;
- words: everything else that is not a stop word, lower-cased.

`split_identifier` is the tokeniser used everywhere ranking compares text (query, files,
slices): ``calculatePositionSize2`` and ``calculate_position_size`` both become
``calculate position size``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final, TypeVar

T = TypeVar("T")

_TRACE_LINE: Final = re.compile(r'File "([^"]+)", line (\d+)(?:, in (\w+))?')
#: A single quote inside a word is an apostrophe ("isn't ... didn't" is no quotation).
_QUOTED: Final = re.compile(
    r"\"([^\"\n]{3,200})\"|(?<!\w)'([^'\n]{3,200})'(?!\w)|`([^`\n]{2,200})`"
)
_PATH: Final = re.compile(r"(?<![\w/.])((?:[\w.-]+/)*[\w-]+\.py)\b")
_TOKEN: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*(?:\(\))?")
_CAMEL: Final = re.compile(r"[A-Z]+(?=[A-Z][a-z0-9])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
_WORD_RUN: Final = re.compile(r"[A-Za-z0-9_]+")
#: Matches when the text before a word ends a sentence (or is empty): "Fixed" there is prose.
_SENTENCE_START: Final = re.compile(r"(?:\A|[.!?:;]|\n)[\s\-*#>\"'(]*\Z")
_RENAME: Final = re.compile(
    r"\brename\s+([`'\"]?[\w.]+[`'\"]?)\s+(?:to|into|as)\s+[`'\"]?([\w.]+)", re.IGNORECASE
)

#: English and command-verb stop words: frequent in commands, useless (or harmful) to search.
STOP_WORDS: Final[frozenset[str]] = frozenset(
    # a word list reads better as one string than as a 200-line list literal
    """
    a about above after again all also an and any are as at be because been before being
    below between both but by can could did do does doing down during each else few for from
    further had has have having he her here hers him his how i if in into is it its itself
    just me more most my no nor not now of off on once only or other our out over own same
    she should so some such than that the their them then there these they this those
    through to too under until up very was we were what when where which while who whom why
    will with would you your yours please make makes made use uses used using want need
    needs new old via per etc e g eg ie i.e let lets ok okay one two three rename renaming
    renamed change changes changed changing add adds added adding remove removes removed
    removing delete fix fixes fixed fixing update updates updated updating refactor
    refactoring move moves moved replace replaced support supports implement implements
    implemented ensure instead everywhere across code file files function functions method
    methods class classes module modules test tests tested testing scale post pr run runs
    merge bug issue should must it's don't doesn't py line traceback lines set get raise
    raises return returns call calls value values true false none
    """.split()  # noqa: SIM905
)
#: Python keywords and builtins are identifiers, but searching for them finds everything.
CODE_NOISE: Final[frozenset[str]] = frozenset(
    # a word list reads better as one string than as a 200-line list literal
    """
    self cls def return none true false import from class lambda pass yield async await str
    int float bool list dict set tuple object print len range type isinstance
    """.split()  # noqa: SIM905
)


def split_identifier(text: str) -> list[str]:
    """Lower-cased sub-words of every identifier-ish run in ``text``, in order.

    >>> split_identifier("calculatePositionSize(HTTPServer, max_bp_2)")
    ['calculate', 'position', 'size', 'http', 'server', 'max', 'bp', '2']
    """
    out: list[str] = []
    for run in _WORD_RUN.findall(text):
        out.extend(split_run(run))
    return out


@lru_cache(maxsize=1 << 17)
def split_run(run: str) -> tuple[str, ...]:
    """`split_identifier` of one ``[A-Za-z0-9_]+`` run, cached."""
    # code repeats its names: caching the split of each run makes tokenising ~3x faster
    return tuple(m.lower() for part in run.split("_") if part for m in _CAMEL.findall(part))


def looks_like_code(token: str) -> bool:
    """True for tokens that only make sense as code: ``snake_case``, ``camelCase``, ``a.b``."""
    bare = token.removesuffix("()")
    if token.endswith("()") or "." in bare:
        return True
    if "_" in bare.strip("_"):
        return True
    # camelCase or CapWords with an inner capital: PositionPlan, getValue
    return bool(re.search(r"[a-z0-9][A-Z]", bare))


@dataclass(frozen=True)
class Terms:
    """Everything searchable in a command. ``words`` are lower-case sub-words."""

    identifiers: tuple[str, ...] = ()
    """Code names as written (``calculate_position_size``, ``PositionPlan``), no dots."""
    names: tuple[str, ...] = ()
    """Capitalised words inside a sentence (``the Kelly fraction``): maybe a class, maybe a
    proper noun. Searched like identifiers, weighed apart."""
    paths: tuple[str, ...] = ()
    """File paths or file names (``wheel_sizing/kelly.py``, ``kelly.py``)."""
    modules: tuple[str, ...] = ()
    """Dotted module-like names (``wheel_sizing.kelly``)."""
    phrases: tuple[str, ...] = ()
    """Quoted strings, searched literally."""
    words: tuple[str, ...] = ()
    """Lower-case sub-words of everything above plus the prose, stop words removed."""
    trace: tuple[tuple[str, int], ...] = field(default=())
    """``(path, line)`` pairs from stack-trace lines."""
    new_names: tuple[str, ...] = ()
    """Names the command introduces (``rename a to b``: ``b``); not searched for."""

    @property
    def empty(self) -> bool:
        return not (
            self.identifiers
            or self.names
            or self.paths
            or self.modules
            or self.phrases
            or self.words
        )

    def all(self) -> list[str]:
        """Every term, for ``MapResult.terms``: identifiers, paths, modules, phrases, words."""
        seen: dict[str, None] = {}
        groups = (self.identifiers, self.names, self.paths, self.modules, self.phrases, self.words)
        for group in groups:
            for t in group:
                seen.setdefault(t, None)
        return list(seen)


def _add(bucket: dict[T, None], item: T) -> None:
    bucket.setdefault(item, None)


def extract(command: str) -> Terms:
    """Split a command into identifiers, paths, modules, phrases and words."""
    identifiers: dict[str, None] = {}
    names: dict[str, None] = {}
    paths: dict[str, None] = {}
    modules: dict[str, None] = {}
    phrases: dict[str, None] = {}
    trace: dict[tuple[str, int], None] = {}
    rest = command
    new_names: dict[str, None] = {}
    for m in _RENAME.finditer(command):
        _add(identifiers, m.group(1).strip("`'\"").rsplit(".", 1)[-1])
        _add(new_names, m.group(2).rsplit(".", 1)[-1])
    for new in new_names:
        # the new name is not in the code yet; where it is, it is somebody else's symbol
        rest = re.sub(rf"\b{re.escape(new)}\b", " ", rest)

    for m in _TRACE_LINE.finditer(command):
        path, line, func = m.group(1), int(m.group(2)), m.group(3)
        _add(trace, (path, line))
        _add(paths, path)
        if func and func != "<module>":
            _add(identifiers, func)
    rest = _TRACE_LINE.sub(" ", rest)

    for m in _QUOTED.finditer(rest):
        text = next(g for g in m.groups() if g is not None).strip()
        if _TOKEN.fullmatch(text):
            # `calculate_position_size` or 'kelly': a quoted name is a name, not a phrase.
            bare = text.removesuffix("()")
            _add(identifiers, bare.rsplit(".", 1)[-1])
            continue
        _add(phrases, text)
    rest = _QUOTED.sub(lambda m: " " + (m.group(0)[1:-1]) + " ", rest)

    for m in _PATH.finditer(rest):
        _add(paths, m.group(1))
    rest = _PATH.sub(lambda m: " " + m.group(1).replace("/", " ").removesuffix(".py") + " ", rest)

    for m in _TOKEN.finditer(rest):
        token = m.group(0)
        bare = token.removesuffix("()")
        if "." in bare:
            _add(modules, bare)
            parts = bare.split(".")
            for i, part in enumerate(parts):
                # Class.method / module.function: the last part is a name, so is a Class
                if i == len(parts) - 1 or looks_like_code(part) or part[:1].isupper():
                    _add(identifiers, part)
            continue
        if bare.lower() in CODE_NOISE:
            continue
        if looks_like_code(token):
            _add(identifiers, bare)
        elif (
            bare[:1].isupper()
            and bare.lower() not in STOP_WORDS
            and not _SENTENCE_START.search(rest, 0, m.start())
        ):
            # A capitalised word inside a sentence ("the Kelly fraction") may be a class,
            # or just a proper noun ("the PostgreSQL dialect"): weaker evidence.
            _add(names, bare)

    words: dict[str, None] = {}
    for w in split_identifier(rest if new_names else command):
        if len(w) > 1 and w not in STOP_WORDS and w not in CODE_NOISE and not w.isdigit():
            _add(words, w)
    return Terms(
        identifiers=tuple(identifiers),
        names=tuple(n for n in names if n not in identifiers),
        paths=tuple(paths),
        modules=tuple(modules),
        phrases=tuple(phrases),
        words=tuple(words),
        trace=tuple(trace),
        new_names=tuple(new_names),
    )
