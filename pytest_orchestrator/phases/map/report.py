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
report's API names it defines or uses (rarer names count more), error-message hits, modules
and paths the report names, and words of its path -- with test, example and documentation
files ranked down unless the report asks about them. The weights were tuned on the tuning
projects of ``benchmarks/data/bug_cases.jsonl`` only (``benchmarks/eval_localisation.py
--bugs``); the held-out projects are reported apart.

No model is called: this is parsing and arithmetic over the searches Map already runs.
"""

from __future__ import annotations

import ast
import math
import re
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Final

from pytest_orchestrator.phases.map.evidence import FileEvidence
from pytest_orchestrator.phases.map.rank import DEFAULT_WEIGHTS
from pytest_orchestrator.phases.map.search import Hits, IdentifierHits
from pytest_orchestrator.phases.map.terms import Terms, looks_like_code
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

#: How much each piece of evidence counts in `file_scores` (see the module docstring).
WEIGHTS: Final[Mapping[str, float]] = {
    "bm25": 1.0,
    "path": 0.3,
    "trace": 2.0,
    "define": 2.0,
    "use": 0.5,
    "message": 1.5,
    "named": 1.5,
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


def parse(text: str) -> Report:
    """The frames, code names, imported modules and error messages of a bug report."""
    frames = _frames(text)
    blocks = _code_blocks(text)
    api: dict[str, None] = {}
    local: dict[str, None] = {}
    modules: dict[str, None] = {}
    for block in blocks:
        _names_of(block, api, local, modules)
    messages = _messages(text)
    title = text.strip().split("\n", 1)[0]
    # a title, a blank line, a body -- or a traceback, code or an error line anywhere; a
    # commit message's lines or one long sentence are still a sentence
    is_report = "\n\n" in text.strip() or bool(frames or blocks or messages)
    return Report(
        frames=tuple(frames),
        api_names=tuple(n for n in api if n not in local),
        local_names=tuple(local),
        modules=tuple(modules),
        messages=tuple(messages),
        about_tests=bool(_ABOUT_TESTS.search(title)),
        is_report=is_report,
    )


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
    code: str, api: dict[str, None], local: dict[str, None], modules: dict[str, None]
) -> None:
    """Collect the names a snippet uses and defines; a snippet that does not parse (output,
    a traceback, another language) gives its code-looking tokens only."""
    try:
        tree = ast.parse(textwrap.dedent(code))
    except (SyntaxError, ValueError):
        for token in re.findall(r"[A-Za-z_][\w.]*\(", code):
            name = token[:-1].rsplit(".", 1)[-1]
            if len(name) > 2:
                api.setdefault(name, None)
        return
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            local.setdefault(node.name, None)
            for arg in ast.walk(node.args) if not isinstance(node, ast.ClassDef) else ():
                if isinstance(arg, ast.arg):
                    local.setdefault(arg.arg, None)
        elif isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Store):
                local.setdefault(node.id, None)
            else:
                api.setdefault(node.id, None)
        elif isinstance(node, ast.Attribute):
            api.setdefault(node.attr, None)
        elif isinstance(node, ast.keyword) and node.arg:
            api.setdefault(node.arg, None)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.setdefault(node.module, None)
            for alias in node.names:
                api.setdefault(alias.name, None)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                modules.setdefault(alias.name, None)
                local.setdefault((alias.asname or alias.name).split(".")[0], None)
    for name in list(api):
        if len(name) <= 2 or name in _BUILTINS:
            del api[name]


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

    put("bm25", ev.bm25)
    put("path", ev.path)
    trace: dict[str, float] = {}
    in_repo = [files for files in ev.frame_files if files]
    for depth, files in enumerate(in_repo):
        # the innermost frame in the repository is where the fault most often is
        weight = 1.0 if depth == len(in_repo) - 1 else 0.5
        for path in files:
            trace[path] = max(trace.get(path, 0.0), weight)
    put("trace", trace)
    api = set(report.api_names) | set(terms.identifiers)
    define: dict[str, float] = {}
    for name, paths in ev.definitions.items():
        if name not in api:
            continue
        paths = list(paths)
        # a name defined in one file says more than one defined in twenty
        for path in paths:
            define[path] = define.get(path, 0.0) + 1.0 / len(paths)
    put("define", define)
    df: dict[str, int] = {}
    for counts in ev.uses.values():
        for name in counts:
            df[name] = df.get(name, 0) + 1
    use = {
        path: sum(math.log(1 + n_files / df[name]) for name in counts if name in api)
        for path, counts in ev.uses.items()
    }
    put("use", use)
    put("message", {p: float(len(c)) for p, c in ev.phrases.items()})
    put("named", {p: 1.0 for p in ev.named})
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


#: Slice weights for a bug report: the file's report score leads (a report names its fault
#: by evidence about files -- frames, API names, messages -- more than by any one
#: definition), a named identifier's definition still lifts its slice within the file.
REPORT_WEIGHTS: Final = replace(
    DEFAULT_WEIGHTS,
    report=6.0,
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
    )
    return {p: c["total"] for p, c in file_scores(report, terms, len(files), ev).items()}
