"""Extract: exactly the variables assigned in the range and read after it come back
(cachetools' ``typedkey``: rope returned a generator's loop variable), and what a call
cannot express is refused."""

from __future__ import annotations

import pytest

from pytest_orchestrator.errors import EditError
from pytest_orchestrator.phases.execute.extraction import extract

TYPEDKEY = """\
def typedkey(*args, **kwargs):
    if kwargs:
        sorted_kwargs = tuple(sorted(kwargs.items()))
        key = tuple(args + sorted_kwargs)
        key += tuple(type(v) for _, v in sorted_kwargs)
    else:
        key = tuple(args)
    key += tuple(type(v) for v in args)
    return key


def other():
    return 1
"""


def run(source: str, start: int, end: int, name: str = "helper") -> dict[str, object]:
    """The module after the extraction, executed: its namespace."""
    done = extract(source, "m.py", start, end, name)
    namespace: dict[str, object] = {}
    exec(compile(done.text, "m.py", "exec"), namespace)
    return namespace


def test_the_variable_read_after_comes_back_not_a_generator_variable() -> None:
    done = extract(TYPEDKEY, "m.py", 3, 5, "kw_key")
    assert done.params == ["kwargs", "args"]
    assert done.returns == ["key"]
    assert "        key = kw_key(kwargs, args)\n" in done.text
    assert "\n\n\ndef kw_key(kwargs, args):\n" in done.text
    assert "    return key\n\n\ndef other():" in done.text
    before: dict[str, object] = {}
    exec(TYPEDKEY, before)
    after = run(TYPEDKEY, 3, 5, "kw_key")
    calls: list[tuple[tuple[object, ...], dict[str, object]]] = [
        ((1, 2), {"a": 3}),
        ((), {}),
        (("x",), {"b": 1.5, "a": None}),
    ]
    for args, kwargs in calls:
        assert after["typedkey"](*args, **kwargs) == before["typedkey"](*args, **kwargs)  # type: ignore[operator]


def test_several_values_come_back_in_binding_order() -> None:
    source = "def f(x):\n    a = x + 1\n    tmp = a * 2\n    b = tmp - x\n    return a + b\n"
    done = extract(source, "m.py", 2, 4, "parts")
    assert done.params == ["x"]
    assert done.returns == ["a", "b"]
    assert "    a, b = parts(x)\n" in done.text
    assert run(source, 2, 4)["f"](3) == 4 + 5  # type: ignore[operator]


def test_nothing_read_after_means_no_return() -> None:
    source = "def f(items):\n    items.append(1)\n    items.append(2)\n    return len(items)\n"
    done = extract(source, "m.py", 2, 3, "fill")
    assert done.returns == []
    assert "    fill(items)\n" in done.text
    assert "return" not in done.text.split("def fill")[1]


def test_a_name_bound_on_some_paths_is_passed_in_and_returned() -> None:
    source = (
        "def f(x):\n    y = 0\n    if x > 1:\n        y = x\n    return y\n"
    )
    done = extract(source, "m.py", 3, 4, "maybe")
    assert done.params == ["x", "y"]
    assert done.returns == ["y"]
    fn = run(source, 3, 4, "maybe")["f"]
    assert (fn(0), fn(5)) == (0, 5)  # type: ignore[operator]


def test_in_a_loop_what_the_next_iteration_reads_comes_back() -> None:
    source = (
        "def f(n):\n    total = 0\n    for i in range(n):\n        step = i * 2\n"
        "        total = total + step\n    return total\n"
    )
    done = extract(source, "m.py", 4, 5, "add_step")
    assert done.params == ["i", "total"]
    assert done.returns == ["total"]
    assert run(source, 4, 5)["f"](4) == 12  # type: ignore[operator]


def test_a_value_carried_to_the_next_iteration_comes_back() -> None:
    """``seen`` is read only inside the loop, before the lines bind it again."""
    source = (
        "def f(xs):\n    seen = 0\n    out = []\n    for x in xs:\n        out.append(seen)\n"
        "        seen = seen + x\n    return out\n"
    )
    done = extract(source, "m.py", 6, 6, "bump")
    assert done.returns == ["seen"]
    assert run(source, 6, 6, "bump")["f"]([1, 2, 3]) == [0, 1, 3]  # type: ignore[operator]


def test_lines_using_self_become_a_method() -> None:
    source = (
        "class Meter:\n    def __init__(self):\n        self.n = 2\n\n"
        "    def reading(self, k):\n        m = self.n * k\n        m += 1\n        return m\n"
    )
    done = extract(source, "m.py", 6, 7, "scaled")
    assert "        m = self.scaled(k)\n" in done.text
    assert "\n    def scaled(self, k):\n" in done.text
    meter = run(source, 6, 7, "scaled")["Meter"]()  # type: ignore[operator]
    assert meter.reading(3) == 7


@pytest.mark.parametrize(
    ("source", "lines", "why"),
    [
        ("def f(x):\n    if x:\n        return 1\n    return 2\n", (2, 3), "a `return`"),
        ("def f(x):\n    for i in x:\n        yield i\n", (2, 3), "a `yield`"),
        ("def f(x):\n    for i in x:\n        if i:\n            break\n", (3, 4), "a `break`"),
        ("def f(x):\n    global G\n    G = x\n", (2, 3), "global"),
        ("def f(x):\n    a = (1 +\n         2)\n    return a\n", (2, 2), "whole statements"),
        ("A = 1\nB = 2\n", (1, 2), "not inside a function"),
    ],
)
def test_what_a_call_cannot_express_is_refused(
    source: str, lines: tuple[int, int], why: str
) -> None:
    with pytest.raises(EditError, match=why):
        extract(source, "m.py", *lines, "helper")


def test_a_break_inside_a_loop_of_the_range_is_fine() -> None:
    source = (
        "def f(xs):\n    found = None\n    for x in xs:\n        if x > 2:\n"
        "            found = x\n            break\n    return found\n"
    )
    done = extract(source, "m.py", 3, 6, "first_big")
    assert done.returns == ["found"]
    assert run(source, 3, 6)["f"]([1, 3, 5]) == 3  # type: ignore[operator]


def test_a_taken_name_is_refused() -> None:
    with pytest.raises(EditError, match="already defined"):
        extract(TYPEDKEY, "m.py", 3, 5, "other")


def test_annotated_code_gets_an_annotated_function() -> None:
    """inflection is checked with ``mypy --strict``: an unannotated extraction is a finding."""
    source = (
        "def slug(string: str, separator: str = '-') -> str:\n"
        "    if separator:\n        string = string.replace(' ', separator)\n"
        "    return string.lower()\n"
    )
    done = extract(source, "m.py", 2, 3, "spaced")
    assert "def spaced(separator: str, string: str) -> str:\n" in done.text
    none = "def f(items: list[int]) -> int:\n    items.append(1)\n    return len(items)\n"
    assert "def grow(items: list[int]) -> None:\n" in extract(none, "m.py", 2, 2, "grow").text
    local = "def g(x: int) -> int:\n    y = x + 1\n    z = y * 2\n    return z\n"
    assert "def h(y):\n" in extract(local, "m.py", 3, 3, "h").text  # y's type is not known
