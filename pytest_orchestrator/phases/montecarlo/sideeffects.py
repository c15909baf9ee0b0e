"""Which functions may be sampled: side effects found before running, and blocked while running.

Differential sampling calls the user's functions thousands of times; it must never write
their files, touch the network, start processes, or compare answers that depend on the clock
or on unseeded randomness. Two layers:

* `analyse` reads the source (no import) and follows calls into functions of the same
  module and of modules in the tree, a few levels deep. A function that reaches I/O, the
  network, processes, the clock, unseeded randomness, stdin or module globals is skipped,
  with the reason and the call that gave it away.
* `Sandbox`, in the child, is an audit hook (PEP 578) that turns any write, delete, socket,
  process or environment change attempted *during a sampled call* into `SideEffectBlocked`
  (a `BaseException`, so ``except Exception`` in the user's code cannot swallow it). What
  the static pass missed is caught here; the function is then skipped with the event.
"""

from __future__ import annotations

import ast
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

# Dotted call prefixes and what they mean. A call matches when its resolved dotted name
# equals an entry or starts with it followed by ".".
_EFFECTS: Final[dict[str, str]] = {
    "open": "file I/O",
    "io.open": "file I/O",
    "input": "reads stdin",
    "sys.stdin": "reads stdin",
    "breakpoint": "debugger",
    "exit": "exits the interpreter",
    "quit": "exits the interpreter",
    "sys.exit": "exits the interpreter",
    "os.system": "starts processes",
    "os.popen": "starts processes",
    "os.fork": "starts processes",
    "os.kill": "signals processes",
    "os.remove": "file I/O",
    "os.unlink": "file I/O",
    "os.rename": "file I/O",
    "os.replace": "file I/O",
    "os.makedirs": "file I/O",
    "os.mkdir": "file I/O",
    "os.rmdir": "file I/O",
    "os.chdir": "changes the working directory",
    "os.environ": "reads or writes the environment",
    "os.getenv": "reads the environment",
    "os.putenv": "writes the environment",
    "os.listdir": "file I/O",
    "os.walk": "file I/O",
    "os.scandir": "file I/O",
    "os.urandom": "unseeded randomness",
    "shutil": "file I/O",
    "tempfile": "file I/O",
    "glob": "file I/O",
    "pathlib.Path.cwd": "file I/O",
    "subprocess": "starts processes",
    "multiprocessing": "starts processes",
    "socket": "network",
    "ssl": "network",
    "http": "network",
    "urllib.request": "network",
    "requests": "network",
    "httpx": "network",
    "aiohttp": "network",
    "smtplib": "network",
    "ftplib": "network",
    "sqlite3": "file I/O",
    "pickle.dump": "file I/O",
    "pickle.load": "file I/O",
    "json.dump": "file I/O",
    "json.load": "file I/O",
    "time.time": "reads the clock",
    "time.time_ns": "reads the clock",
    "time.monotonic": "reads the clock",
    "time.perf_counter": "reads the clock",
    "time.localtime": "reads the clock",
    "time.gmtime": "reads the clock",
    "time.sleep": "sleeps",
    "datetime.datetime.now": "reads the clock",
    "datetime.datetime.utcnow": "reads the clock",
    "datetime.datetime.today": "reads the clock",
    "datetime.date.today": "reads the clock",
    "random": "unseeded randomness",
    "secrets": "unseeded randomness",
    "uuid.uuid1": "unseeded randomness",
    "uuid.uuid4": "unseeded randomness",
    "numpy.random.rand": "unseeded randomness",
    "numpy.random.randn": "unseeded randomness",
    "numpy.random.randint": "unseeded randomness",
    "numpy.random.random": "unseeded randomness",
    "numpy.random.random_sample": "unseeded randomness",
    "numpy.random.choice": "unseeded randomness",
    "numpy.random.normal": "unseeded randomness",
    "numpy.random.uniform": "unseeded randomness",
    "numpy.random.shuffle": "unseeded randomness",
    "numpy.random.permutation": "unseeded randomness",
    "numpy.random.standard_normal": "unseeded randomness",
    "numpy.random.poisson": "unseeded randomness",
    "numpy.random.seed": "unseeded randomness",
    "numpy.save": "file I/O",
    "numpy.load": "file I/O",
    "numpy.savetxt": "file I/O",
    "numpy.loadtxt": "file I/O",
    "numpy.fromfile": "file I/O",
    "numpy.tofile": "file I/O",
}
# Seeded constructors are fine; unseeded (no arguments) are not.
_SEEDABLE: Final = {"random.Random", "numpy.random.default_rng", "numpy.random.RandomState"}
# Methods that write whatever object they are called on (Path, file objects).
_WRITING_METHODS: Final = {
    "write_text": "file I/O",
    "write_bytes": "file I/O",
    "read_text": "file I/O",
    "read_bytes": "file I/O",
    "unlink": "file I/O",
    "touch": "file I/O",
    "rmdir": "file I/O",
    "mkdir": "file I/O",
    "to_csv": "file I/O",
    "to_parquet": "file I/O",
    "savefig": "file I/O",
}
MAX_DEPTH: Final = 4


@dataclass(frozen=True)
class Finding:
    """A reason not to sample a function: what it does, and the call that does it."""

    reason: str
    call: str
    where: str
    """``module.function:line`` of the call."""

    def __str__(self) -> str:
        return f"{self.reason} ({self.call} in {self.where})"


@dataclass
class ModuleIndex:
    """Parsed modules of one tree, by dotted name, read lazily."""

    tree: Path
    _cache: dict[str, tuple[ast.Module, dict[str, str]] | None] = field(default_factory=dict)

    def load(self, module: str) -> tuple[ast.Module, dict[str, str]] | None:
        """The module's AST and its import aliases (local name -> dotted name)."""
        if module not in self._cache:
            self._cache[module] = self._parse(module)
        return self._cache[module]

    def _parse(self, module: str) -> tuple[ast.Module, dict[str, str]] | None:
        path = module_file(self.tree, module)
        if path is None:
            return None
        try:
            tree = ast.parse(path.read_bytes(), filename=str(path))
        except (OSError, SyntaxError, ValueError):
            return None
        return tree, import_aliases(tree, module, path.name == "__init__.py")


def module_file(tree: Path, module: str) -> Path | None:
    """The file of a dotted module inside ``tree`` (flat or ``src/`` layout), or None."""
    rel = Path(*module.split("."))
    for root in (tree, tree / "src"):
        for candidate in (root / rel.with_suffix(".py"), root / rel / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def import_aliases(tree: ast.Module, module: str, is_package: bool) -> dict[str, str]:
    aliases: dict[str, str] = {}
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    aliases[a.asname] = a.name
                else:
                    top = a.name.split(".")[0]
                    aliases[top] = top
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".") if package else []
                parts = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
                base = ".".join([*parts, base] if base else parts)
            for a in node.names:
                aliases[a.asname or a.name] = f"{base}.{a.name}" if base else a.name
    return aliases


def dotted_call(func: ast.expr, aliases: dict[str, str]) -> str | None:
    """``np.random.rand`` -> ``numpy.random.rand`` through the module's import aliases."""
    parts: list[str] = []
    node = func
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Call):
        inner = dotted_call(node.func, aliases)
        if inner is None:
            return None
        return ".".join([inner + "()", *reversed(parts)])
    if not isinstance(node, ast.Name):
        return None
    head = aliases.get(node.id, node.id)
    return ".".join([head, *reversed(parts)])


def _match(dotted: str) -> str | None:
    probe = dotted
    while probe:
        if probe in _EFFECTS:
            return _EFFECTS[probe]
        probe = probe.rpartition(".")[0]
    return None


def find_function(
    module: ast.Module, qualname: str
) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    body: list[ast.stmt] = module.body
    found: ast.AST | None = None
    for part in qualname.split("."):
        found = next(
            (
                n
                for n in body
                if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                and n.name == part
            ),
            None,
        )
        if found is None:
            return None
        body = found.body
    return found if isinstance(found, ast.FunctionDef | ast.AsyncFunctionDef) else None


def analyse(index: ModuleIndex, module: str, qualname: str) -> Finding | None:
    """The first side effect ``module.qualname`` can reach, or None if none is visible."""
    return _analyse(index, module, qualname, 0, set())


def _analyse(
    index: ModuleIndex, module: str, qualname: str, depth: int, seen: set[str]
) -> Finding | None:
    key = f"{module}.{qualname}"
    if key in seen or depth > MAX_DEPTH:
        return None
    seen.add(key)
    loaded = index.load(module)
    if loaded is None:
        return None
    tree, aliases = loaded
    func = find_function(tree, qualname)
    if func is None:
        return None
    top_level = {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    for node in ast.walk(func):
        where = f"{key}:{getattr(node, 'lineno', func.lineno)}"
        if isinstance(node, ast.Global):
            return Finding("writes module globals", f"global {', '.join(node.names)}", where)
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            dotted = dotted_call(node, aliases)
            if dotted in ("sys.stdin", "os.environ"):
                return Finding(_EFFECTS[dotted], dotted, where)
        if not isinstance(node, ast.Call):
            continue
        dotted = dotted_call(node.func, aliases)
        if dotted is None:
            continue
        found = _call_effect(dotted, node, aliases, top_level, where)
        if found is None and "()" not in dotted:
            found = _follow(index, module, dotted, top_level, depth, seen)
        if found is not None:
            return found
    return None


_BUILTINS: Final = {"open", "input", "breakpoint", "exit", "quit"}


def _call_effect(
    dotted: str, node: ast.Call, aliases: dict[str, str], top_level: set[str], where: str
) -> Finding | None:
    head, _, rest = dotted.partition("()")
    if head in _SEEDABLE:
        if not rest and not node.args and not node.keywords:
            return Finding("unseeded randomness", f"{dotted}()", where)
        return None
    name = dotted.split(".")[0]
    imported = name in aliases or name in {v.split(".")[0] for v in aliases.values()}
    imported_or_builtin = imported or (name in _BUILTINS and name not in top_level)
    if not rest and imported_or_builtin:
        reason = _match(dotted)
        if reason is not None:
            return Finding(reason, f"{dotted}()", where)
    attr = dotted.rpartition(".")[2]
    if "." in dotted and attr in _WRITING_METHODS:
        return Finding(_WRITING_METHODS[attr], f"{dotted}()", where)
    return None


def _follow(
    index: ModuleIndex,
    module: str,
    dotted: str,
    top_level: set[str],
    depth: int,
    seen: set[str],
) -> Finding | None:
    """Analyse the callee when it is a function of this module or of a module in the tree."""
    if dotted in top_level:
        return _analyse(index, module, dotted, depth + 1, seen)
    if "." in dotted:
        target_module, _, name = dotted.rpartition(".")
        return _analyse(index, target_module, name, depth + 1, seen)
    return None


# ---------------------------------------------------------------------------- runtime


class SideEffectBlocked(BaseException):
    """A sampled call tried something the sandbox forbids; the function is skipped."""


_BLOCKED_EVENTS: Final = {
    "os.remove": "file I/O",
    "os.rename": "file I/O",
    "os.rmdir": "file I/O",
    "os.mkdir": "file I/O",
    "os.truncate": "file I/O",
    "os.chmod": "file I/O",
    "os.chown": "file I/O",
    "os.link": "file I/O",
    "os.symlink": "file I/O",
    "os.utime": "file I/O",
    "os.chdir": "changes the working directory",
    "os.putenv": "writes the environment",
    "os.unsetenv": "writes the environment",
    "os.system": "starts processes",
    "os.exec": "starts processes",
    "os.fork": "starts processes",
    "os.forkpty": "starts processes",
    "os.posix_spawn": "starts processes",
    "os.spawn": "starts processes",
    "os.kill": "signals processes",
    "os.killpg": "signals processes",
    "subprocess.Popen": "starts processes",
    "shutil.rmtree": "file I/O",
    "shutil.move": "file I/O",
    "shutil.copyfile": "file I/O",
    "socket.connect": "network",
    "socket.bind": "network",
    "socket.getaddrinfo": "network",
    "socket.gethostbyname": "network",
    "socket.sendto": "network",
    "urllib.Request": "network",
    "sqlite3.connect": "file I/O",
    "ctypes.dlopen": "loads native code",
}
_WRITE_FLAGS: Final = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


@dataclass
class Sandbox:
    """An audit hook active only inside `Sandbox.active` blocks (installed once per child)."""

    enabled: bool = False
    last: str = ""

    def install(self) -> None:
        sys.addaudithook(self._hook)

    @contextmanager
    def active(self) -> Iterator[None]:
        self.enabled = True
        try:
            yield
        finally:
            self.enabled = False

    def _hook(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.enabled:
            return
        reason = _BLOCKED_EVENTS.get(event)
        if reason is None and event == "open" and _writes(args):
            reason = "file I/O"
        if reason is None:
            return
        self.enabled = False  # the exception's own machinery must not trip the hook
        detail = ", ".join(_short(a) for a in args[:2])
        self.last = f"{reason} ({event}({detail}) at run time)"
        raise SideEffectBlocked(self.last)


def _writes(args: tuple[Any, ...]) -> bool:
    mode = args[1] if len(args) > 1 else None
    flags = args[2] if len(args) > 2 else 0
    if isinstance(mode, str) and any(c in mode for c in "wax+"):
        return True
    return isinstance(flags, int) and bool(flags & _WRITE_FLAGS)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."
