"""Reading a bug report: what a pasted issue says about where the fault is, and a file score.

A bug report is not a sentence. It is a title, prose, code blocks, tracebacks and error
messages, most of which are the reporter's code and environment, not the project's. Taken as
one bag of words it dilutes the few strong clues, so `parse` pulls them out first-class:

- stack frames in every common shape -- ``File "x.py", line 3, in f`` (CPython),
  ``x.py:3: in f`` (pytest), ``x.py in f(...)`` (IPython), ``blob/<ref>/x.py#L3`` (a link);
- code blocks (fenced, indented or ``>>>`` sessions), parsed with `ast` where they parse:
  the names they call and the attributes they touch are the project's API as the reporter
  used it; the names the snippet defines itself (its classes, functions, variables) are
  the reporter's and are dropped; ``from pkg.mod import x`` names a module;
- error messages (``KeyError: ...``, ``error: cannot format x: ...``), searched as strings;
- whether the report is about the tests themselves (otherwise test files rank down).

`file_scores` then scores every file that any search touched: BM25 of the file against the
report's words, the frames that point into it (the deepest in-repository frame most), the
report's API names it defines or uses, error-message hits, modules and paths the report
names, words of its path and a small prior for long modules -- with test, example and
documentation files ranked down unless the report asks about them. A long report mentions
many names and words, and most of them are the reporter's context, not the fault; so every
name and word counts by where the report shows it (`NAME_WEIGHTS`, `WORD_WEIGHTS`: the title
most, a called name more than a keyword; a URL's or an issue template's words little or
nothing) and by how specific it is in this repository (a name used in every module, a message
found in many files, count less). The weights were tuned on the tuning projects of
``benchmarks/data/bug_cases.jsonl`` only (``benchmarks/eval_localisation.py --bugs``); the
held-out projects are reported apart.

No model is called: this is parsing and arithmetic over the searches Map already runs.
"""

from __future__ import annotations

import ast
import math
import re
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Final

from pytest_orchestrator.phases.map.evidence import FileEvidence
from pytest_orchestrator.phases.map.rank import DEFAULT_WEIGHTS, bm25, idf
from pytest_orchestrator.phases.map.search import Hits, IdentifierHits
from pytest_orchestrator.phases.map.terms import (
    CODE_NOISE,
    STOP_WORDS,
    Terms,
    extract,
    looks_like_code,
    split_identifier,
)
from pytest_orchestrator.repo.files import is_test_path

#: ``File "path", line 3, in func`` -- CPython's traceback frame.
_CPYTHON_FRAME: Final = re.compile(r'File "([^"\n]+)", line (\d+)(?:, in ([\w<>.]+))?')
#: ``path/x.py:3: in func`` or ``path/x.py:3: KeyError`` -- pytest's short frames, and any
#: ``x.py:3`` a reporter writes.
_COLON_FRAME: Final = re.compile(r"(/?(?:[\w.\-~]+[/\\])*[\w.\-]+\.py):(\d+)(?::\s*in\s+(\w+))?")
#: ``/site-packages/pkg/x.py in func(self, a)`` -- IPython's frame header.
_IPYTHON_FRAME: Final = re.compile(r"(/?(?:[\w.\-~]+/)+[\w.\-]+\.py) in (\w+)\(")
#: ``blob/<ref>/src/pkg/x.py#L3`` -- a link to a line on a forge.
_LINK_FRAME: Final = re.compile(r"/blob/[\w.\-]+/((?:[\w.\-]+/)*[\w.\-]+\.py)(?:#L(\d+))?")
#: ``SomeError: message`` at a line's start (the last line of a traceback).
_ERROR_LINE: Final = re.compile(
    r"^\s*(?:E\s+)?((?:[A-Za-z_]\w*\.)*[A-Z]\w*(?:Error|Exception|Warning|Exit))(?::\s*(.*))?$",
    re.MULTILINE,
)
#: ``error: cannot format x.py: message`` -- a tool's own error line.
_TOOL_ERROR: Final = re.compile(r"^\s*(?:error|ERROR|fatal|FATAL):\s*(.+)$", re.MULTILINE)
_FENCE: Final = re.compile(r"^\s*(`{3,}|~{3,})[^\n]*\n(.*?)^\s*\1", re.MULTILINE | re.DOTALL)
_PROMPT: Final = re.compile(r"^\s*(?:>>>|\.\.\.|In \[\d+\]:|\$)\s?", re.MULTILINE)
_QUOTED_PART: Final = re.compile(r"'[^']*'|\"[^\"]*\"|<[^>]*>|\b0x[0-9a-f]+\b|\b\d+(?:\.\d+)?\b")
#: The report asks to change the tests themselves (then test files are not ranked down).
_ABOUT_TESTS: Final = re.compile(
    r"\b(?:add|write|fix|update|improve|refactor|speed up|rewrite|missing)\s+(?:the\s+|a\s+|"
    r"more\s+|unit\s+)?tests?\b|\bflaky\b|\btest coverage\b|\bconftest\b",
    re.IGNORECASE,
)
#: Directories whose files are rarely what a bug report's fix changes.
_AUX_DIRS: Final = (
    "examples",
    "example",
    "docs",
    "doc",
    "benchmarks",
    "bench",
    "demo",
    "demos",
    "scripts",
)

#: How much a name counts by where the report shows it. The title is the reporter's
#: summary; a name the snippet calls is the API in question more often than an attribute it
#: reads or a keyword it passes.
NAME_WEIGHTS: Final[Mapping[str, float]] = {
    "title": 2.0,
    "prose": 1.0,
    "frame": 1.0,
    "call": 1.0,
    "name": 0.8,
    "attribute": 0.6,
    "keyword": 0.4,
}
#: How much a word counts in the report's BM25 by where it stands: title, prose, code blocks
#: (their output and tracebacks included), issue-template words in the body.
WORD_WEIGHTS: Final[Mapping[str, float]] = {
    "title": 2.0,
    "prose": 1.0,
    "code": 0.5,
    "template": 0.2,
}
_URL: Final = re.compile(r"\b(?:https?|file)://\S+|\bwww\.\S+")
#: Issue-template scaffolding: markdown headings, bold labels, "- OS: ..." and
#: "- Python version: ..." lines. Their words say nothing about this bug.
_SCAFFOLD: Final = re.compile(
    r"^\s*#{1,6}\s.*$|\*\*[^*\n]{1,60}\*\*:?|^\s*[-*]?\s*[\w .]{0,30}\b(?:[Vv]ersions?|OS|"
    r"[Pp]latform|[Oo]perating [Ss]ystem)\s*:.*$",
    re.MULTILINE,
)
#: Words issue templates put in every report ("Describe the bug", "Expected behavior").
_TEMPLATE_WORDS: Final = frozenset(
    # a word list reads better as one string than as a list literal
    """describe reproduce reproducing reproducible behavior behaviour expected actual
    environment version versions context additional steps summary example minimal
    screenshots os python platform output result results""".split()  # noqa: SIM905
)

#: How much each piece of evidence counts in `file_scores` (see the module docstring).
WEIGHTS: Final[Mapping[str, float]] = {
    "bm25": 2.0,
    "path": 1.0,
    "trace": 4.0,
    "define": 2.0,
    "use": 0.5,
    "message": 1.5,
    "named": 1.5,
    "size": 0.5,
}
#: Factor on the score of a test file (when the report is not about tests), of an
#: example/documentation file, and of a package's ``__init__.py`` that no frame or path names
#: (it re-exports the API, so it "uses" every name a report mentions).
TEST_FACTOR: Final = 0.2
AUX_FACTOR: Final = 0.5
INIT_FACTOR: Final = 0.5


@dataclass(frozen=True)
class Frame:
    """One stack frame the report shows: a file, maybe a line, maybe a function."""

    path: str
    line: int = 0
    function: str = ""


@dataclass(frozen=True)
class Report:
    """What `parse` found in a bug report."""

    frames: tuple[Frame, ...] = ()
    """Stack frames in the order written (a traceback's innermost frame comes last)."""
    api_names: tuple[str, ...] = ()
    """Names the report's code calls or touches that it does not define itself."""
    local_names: tuple[str, ...] = ()
    """Names the report's code defines (the reporter's classes, functions, variables)."""
    modules: tuple[str, ...] = ()
    """Dotted modules the report's code imports from."""
    messages: tuple[str, ...] = ()
    """Error-message fragments worth searching as strings."""
    about_tests: bool = False
    """The report asks to change tests, so test files are not ranked down."""
    is_report: bool = False
    """The command reads as a bug report (a title and a body, code, a traceback, an error
    line), not a sentence."""
    name_weights: Mapping[str, float] = field(default_factory=dict)
    """Per code name (the snippets', the frames', the prose's), how much it counts by
    where the report shows it (`NAME_WEIGHTS`: the title most)."""
    word_weights: Mapping[str, float] = field(default_factory=dict)
    """Per lower-case sub-word, its weight in the report's BM25 (the title's most); a word
    seen only in a URL weighs nothing."""


def parse(text: str) -> Report:
    """The frames, code names, imported modules and error messages of a bug report."""
    frames = _frames(text)
    blocks = _code_blocks(text)
    api: dict[str, float] = {}
    local: dict[str, None] = {}
    modules: dict[str, None] = {}
    for block in blocks:
        _names_of(block, api, local, modules)
    messages = _messages(text)
    title, _, body = text.strip().partition("\n")
    # a title, a blank line, a body -- or a traceback, code or an error line anywhere; a
    # commit message's lines or one long sentence are still a sentence
    is_report = "\n\n" in text.strip() or bool(frames or blocks or messages)
    prose = _SCAFFOLD.sub(" ", _URL.sub(" ", _FENCE.sub("\n", body)))
    names = dict(api)
    for frame in frames:
        if frame.function.isidentifier():
            _raise(names, frame.function, NAME_WEIGHTS["frame"])
    prose_terms = extract(prose)
    for name in prose_terms.identifiers:
        _raise(names, name, NAME_WEIGHTS["prose"])
    title_terms = extract(_URL.sub(" ", title))
    for name in title_terms.identifiers:
        _raise(names, name, NAME_WEIGHTS["title"])
    for name in title_terms.names:
        # a capitalised word of the title ("Email and URL fields") may be a class
        _raise(names, name, NAME_WEIGHTS["prose"])
    words: dict[str, float] = {}
    for segment, kind in (("\n".join(blocks), "code"), (prose, "prose"), (title, "title")):
        for word in split_identifier(_URL.sub(" ", segment)):
            weight = WORD_WEIGHTS[kind]
            if kind != "title" and word in _TEMPLATE_WORDS:
                weight = WORD_WEIGHTS["template"]
            _raise(words, word, weight)
    return Report(
        frames=tuple(frames),
        api_names=tuple(n for n in api if n not in local),
        local_names=tuple(local),
        modules=tuple(modules),
        messages=tuple(messages),
        about_tests=bool(_ABOUT_TESTS.search(title)),
        is_report=is_report,
        name_weights={
            n: w
            for n, w in names.items()
            if len(n) > 2 and (n not in local or n in title_terms.all())
        },
        word_weights={
            w: v
            for w, v in words.items()
            if len(w) > 1 and w not in STOP_WORDS and w not in CODE_NOISE and not w.isdigit()
        },
    )


def _raise(weights: dict[str, float], key: str, weight: float) -> None:
    """Keep the highest weight seen for ``key``."""
    if weight > weights.get(key, 0.0):
        weights[key] = weight


def _frames(text: str) -> list[Frame]:
    found: dict[tuple[str, int], Frame] = {}
    spans: list[tuple[int, int]] = []
    for m in _CPYTHON_FRAME.finditer(text):
        path, line = m.group(1).replace("\\", "/"), int(m.group(2))
        found.setdefault((path, line), Frame(path, line, m.group(3) or ""))
        spans.append(m.span())
    for pattern in (_COLON_FRAME, _IPYTHON_FRAME, _LINK_FRAME):
        for m in pattern.finditer(text):
            if any(a <= m.start() < b for a, b in spans):
                continue
            path = m.group(1).replace("\\", "/")
            if pattern is _IPYTHON_FRAME:
                line, func = 0, m.group(2)
            else:
                line = int(m.group(2) or 0)
                func = m.group(3) if pattern is _COLON_FRAME and m.group(3) else ""
            found.setdefault((path, line), Frame(path, line, func or ""))
    order = {key: text.find(key[0]) for key in found}
    return [found[k] for k in sorted(found, key=lambda k: (order[k], k[1]))]


def _code_blocks(text: str) -> list[str]:
    """Fenced blocks, ``>>>`` sessions and indented blocks, prompts removed."""
    blocks = [m.group(2) for m in _FENCE.finditer(text)]
    rest = _FENCE.sub("\n", text)
    session = [ln for ln in rest.splitlines() if re.match(r"\s*(>>>|\.\.\.)\s", ln)]
    if session:
        blocks.append("\n".join(session))
    indented: list[str] = []
    for line in [*rest.splitlines(), ""]:
        if line.startswith(("    ", "\t")) and line.strip():
            indented.append(line)
        elif indented:
            if len(indented) >= 2:
                blocks.append(textwrap.dedent("\n".join(indented)))
            indented = []
    return [_PROMPT.sub("", b) for b in blocks]


def _names_of(
    code: str, api: dict[str, float], local: dict[str, None], modules: dict[str, None]
) -> None:
    """Collect the names a snippet uses (with the weight of how it uses them: called, read,
    passed as a keyword) and the names it defines; a snippet that does not parse (output, a
    traceback, another language) gives its code-looking ``name(`` tokens only."""
    found: dict[str, float] = {}
    try:
        tree = ast.parse(textwrap.dedent(code))
    except (SyntaxError, ValueError):
        for token in re.findall(r"[A-Za-z_][\w.]*\(", code):
            _raise(found, token[:-1].rsplit(".", 1)[-1], NAME_WEIGHTS["attribute"])
        tree = None
    called: set[int] = set()
    for node in ast.walk(tree) if tree is not None else ():
        if isinstance(node, ast.Call):
            called.add(id(node.func))
    for node in ast.walk(tree) if tree is not None else ():
        kind = "call" if id(node) in called else None
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            local.setdefault(node.name, None)
            for arg in ast.walk(node.args) if not isinstance(node, ast.ClassDef) else ():
                if isinstance(arg, ast.arg):
                    local.setdefault(arg.arg, None)
        elif isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Store):
                local.setdefault(node.id, None)
            else:
                _raise(found, node.id, NAME_WEIGHTS[kind or "name"])
        elif isinstance(node, ast.Attribute):
            _raise(found, node.attr, NAME_WEIGHTS[kind or "attribute"])
        elif isinstance(node, ast.keyword) and node.arg:
            _raise(found, node.arg, NAME_WEIGHTS["keyword"])
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.setdefault(node.module, None)
            for alias in node.names:
                _raise(found, alias.name, NAME_WEIGHTS["name"])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                modules.setdefault(alias.name, None)
                local.setdefault((alias.asname or alias.name).split(".")[0], None)
    for name, weight in found.items():
        if len(name) > 2 and name not in _BUILTINS:
            _raise(api, name, weight)


_BUILTINS: Final = frozenset(
    """print len range str int float bool list dict set tuple object type isinstance super
    self cls None True False open repr sorted enumerate zip map filter getattr setattr
    hasattr format append items keys values join split strip lower upper""".split()  # noqa: SIM905
)


def _messages(text: str) -> list[str]:
    """Fragments of error messages: the message with its quoted values and numbers cut out
    (they are the reporter's data), each run of at least three words kept."""
    raw: list[str] = []
    for m in _ERROR_LINE.finditer(text):
        if m.group(2):
            raw.append(m.group(2))
    raw += [m.group(1) for m in _TOOL_ERROR.finditer(text)]
    out: dict[str, None] = {}
    for message in raw:
        message = re.sub(r"^cannot format [^:]+:\s*", "", message)
        for part in _QUOTED_PART.split(message):
            part = part.strip(" .,:;!?()[]{}`")
            if len(part.split()) >= 3 and 12 <= len(part) <= 120:
                out.setdefault(part, None)
    return list(out)


def widen(terms: Terms, report: Report) -> Terms:
    """`terms` with the report's evidence added for the searches: frame files as paths and
    trace lines, API names as identifiers, imported modules, error messages as phrases; the
    snippet's own names are no longer searched as identifiers."""
    local = set(report.local_names) - set(report.api_names)
    identifiers = [i for i in terms.identifiers if i not in local]
    for name in report.api_names:
        if looks_like_code(name) or name[:1].isupper() or name in terms.identifiers:
            identifiers.append(name)
    for frame in report.frames:
        if frame.function and frame.function.isidentifier():
            identifiers.append(frame.function)
    paths = [*terms.paths, *(f.path for f in report.frames)]
    trace = [*terms.trace, *((f.path, f.line) for f in report.frames if f.line)]
    return Terms(
        identifiers=tuple(dict.fromkeys(identifiers)),
        names=tuple(n for n in terms.names if n not in local),
        paths=tuple(dict.fromkeys(paths)),
        modules=tuple(dict.fromkeys([*terms.modules, *report.modules])),
        phrases=tuple(dict.fromkeys([*terms.phrases, *report.messages])),
        words=terms.words,
        trace=tuple(dict.fromkeys(trace)),
        new_names=terms.new_names,
    )


def is_auxiliary(path: str, package_dirs: frozenset[str] = frozenset()) -> bool:
    """An example, documentation or benchmark file (``docs/conf.py``, ``examples/x.py``),
    or -- when the repository's package directories are known -- a file in a subdirectory
    that is no package (``scripts/release.py``, ``gallery/build.py``). Files at the root
    (``setup.py``, a single-module project) are not auxiliary."""
    parts = path.split("/")[:-1]
    if any(p in _AUX_DIRS for p in parts):
        return True
    return bool(package_dirs) and bool(parts) and "/".join(parts) not in package_dirs


def _normalised(values: Mapping[str, float]) -> dict[str, float]:
    top = max(values.values(), default=0.0)
    return {k: v / top for k, v in values.items()} if top > 0 else {}


@dataclass(frozen=True)
class Evidence:
    """The searches' findings `file_scores` combines, one mapping per kind (path -> value)."""

    bm25: Mapping[str, float]
    path: Mapping[str, float]
    definitions: Mapping[str, Iterable[str]]
    """identifier -> files defining it"""
    uses: Mapping[str, Mapping[str, int]]
    """path -> identifier -> occurrences"""
    phrases: Mapping[str, Mapping[str, int]]
    """path -> phrase -> occurrences"""
    frame_files: list[set[str]]
    """per frame of the report (in order), the repository files it resolves to"""
    named: set[str]
    """files the report names by path or module"""
    package_dirs: frozenset[str] = frozenset()
    """directories holding an ``__init__.py`` (empty: unknown)"""
    word_counts: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    """path -> query word -> occurrences: with ``sizes``, BM25 again with the report's
    weights per word (`Report.word_weights`); without them ``bm25`` is used as it is"""
    sizes: Mapping[str, float] = field(default_factory=dict)
    """path -> bytes (BM25's document length)"""


def file_scores(
    report: Report,
    terms: Terms,
    n_files: int,
    ev: Evidence,
    weights: Mapping[str, float] = WEIGHTS,
) -> dict[str, dict[str, float]]:
    """Per file, the normalised evidence and its weighted ``total`` (see the module doc)."""
    comps: dict[str, dict[str, float]] = {}

    def put(kind: str, values: Mapping[str, float]) -> None:
        for path, value in _normalised(values).items():
            comps.setdefault(path, {})[kind] = value

    put("bm25", _weighted_bm25(report, n_files, ev) if ev.sizes else ev.bm25)
    put("path", ev.path)
    trace: dict[str, float] = {}
    in_repo = [files for files in ev.frame_files if files]
    for depth, files in enumerate(in_repo):
        # the innermost frame in the repository is where the fault most often is
        weight = 1.0 if depth == len(in_repo) - 1 else 0.5
        for path in files:
            trace[path] = max(trace.get(path, 0.0), weight)
    put("trace", trace)
    # a name counts by where the report shows it and by how specific it is in this
    # repository: ``Schema`` that every module uses says less than ``Nested``
    df: dict[str, int] = {}
    for counts in ev.uses.values():
        for name in counts:
            df[name] = df.get(name, 0) + 1
    # the command's other identifiers (a URL's host, a snippet's output) count least
    shown = dict.fromkeys(terms.identifiers, NAME_WEIGHTS["keyword"])
    shown.update(report.name_weights)
    weight_of = {
        name: w * math.log(1 + n_files / max(df.get(name, 0), 1)) for name, w in shown.items()
    }
    define: dict[str, float] = {}
    for name, paths in ev.definitions.items():
        if name not in weight_of:
            continue
        paths = list(paths)
        # a name defined in one file says more than one defined in twenty
        for path in paths:
            define[path] = define.get(path, 0.0) + weight_of[name] / len(paths)
    put("define", define)
    use = {
        path: sum(weight_of.get(name, 0.0) for name in counts) for path, counts in ev.uses.items()
    }
    put("use", use)
    phrase_df: dict[str, int] = {}
    for found in ev.phrases.values():
        for phrase in found:
            phrase_df[phrase] = phrase_df.get(phrase, 0) + 1
    # an error message found in one file says where it is raised; one found in many says
    # little (a short phrase, a common word pair)
    put(
        "message",
        {
            p: sum(math.log(1 + n_files / phrase_df[phrase]) for phrase in found)
            for p, found in ev.phrases.items()
        },
    )
    put("named", {p: 1.0 for p in ev.named})
    # a small prior for long modules: they hold more of the code fixes touch, and BM25's
    # length normalisation alone ranks them below short files that repeat a word
    put("size", {p: math.log1p(n / 1000) for p, n in ev.sizes.items()})
    for path, comp in comps.items():
        total = sum(weights.get(k, 0.0) * v for k, v in comp.items())
        if is_test_path(path) and not report.about_tests:
            total *= TEST_FACTOR
        elif is_auxiliary(path, ev.package_dirs):
            total *= AUX_FACTOR
        elif path.endswith("__init__.py") and not comp.get("trace") and not comp.get("named"):
            total *= INIT_FACTOR
        comp["total"] = total
    return comps


def _weighted_bm25(report: Report, n_files: int, ev: Evidence) -> dict[str, float]:
    """BM25 of every counted file, each query word's IDF times its `Report.word_weights`
    (a word the report shows only in a URL counts nothing)."""
    df: dict[str, int] = {}
    for counts in ev.word_counts.values():
        for word in counts:
            df[word] = df.get(word, 0) + 1
    idfs = {
        w: idf(max(n_files, 1), df[w]) * report.word_weights.get(w, 0.0)
        for w in df
        if report.word_weights.get(w, 0.0) > 0
    }
    sizes = list(ev.sizes.values())
    avg = sum(sizes) / len(sizes) if sizes else 1.0
    return {
        path: bm25(counts, ev.sizes.get(path, avg), avg, idfs)
        for path, counts in ev.word_counts.items()
    }


#: Slice weights for a bug report: the file's report score leads (a report names its fault
#: by evidence about files -- frames, API names, messages -- more than by any one
#: definition), a named identifier's definition still lifts its slice within the file.
REPORT_WEIGHTS: Final = replace(
    DEFAULT_WEIGHTS,
    report=10.0,
    definition=1.5,
    name=-0.5,
    identifier=0.5,
    lexical=1.0,
    file=0.0,
    path=0.0,
    graph=0.2,
    centrality=0.05,
    vector=0.3,
    test=-1.0,
)


def report_scores(
    report: Report,
    terms: Terms,
    evidence: FileEvidence,
    idents: IdentifierHits,
    hits: Hits,
    frame_files: list[set[str]],
    named: set[str],
    files: list[str],
) -> dict[str, float]:
    """`file_scores` over Map's searches: each file's weighted total."""
    ev = Evidence(
        bm25=evidence.text,
        path=evidence.path,
        definitions=idents.definitions,
        uses=idents.counts,
        phrases=hits.phrases,
        frame_files=frame_files,
        named=named,
        package_dirs=frozenset(f.rsplit("/", 1)[0] for f in files if f.endswith("/__init__.py")),
        word_counts=hits.words,
        sizes=evidence.sizes,
    )
    return {p: c["total"] for p, c in file_scores(report, terms, len(files), ev).items()}
