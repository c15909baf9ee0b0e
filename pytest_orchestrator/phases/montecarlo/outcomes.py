"""What a call did, as builtins JSON, and when two of those agree.

A sampled call's outcome is encoded in the child that ran it, so nothing has to be
picklable or hashable: `encode` turns any value into a tree of JSON builtins tagged with its
type (numpy arrays with dtype and shape, dataclasses and pydantic models field by field,
other objects by their ``__dict__`` or ``repr``). `agree` compares two encodings with a float
tolerance where NaN equals NaN, after mapping renamed type names, and says where they differ.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Callable, Mapping
from typing import Any, Final

MAX_DEPTH: Final = 8
MAX_ITEMS: Final = 200
"""Containers longer than this are encoded as their first items plus their length."""
MAX_TEXT: Final = 2000

Json = Any


def type_name(obj: object) -> str:
    """``module.Qualname`` of ``obj``'s type."""
    t = type(obj)
    return f"{t.__module__}.{t.__qualname__}"


def encode(value: object, depth: int = 0) -> Json:
    """A JSON-builtins encoding of ``value`` that keeps what equality should look at."""
    if value is None or isinstance(value, bool | str):
        return value if not isinstance(value, str) else value[:MAX_TEXT]
    if isinstance(value, int) and not isinstance(value, enum.Enum):
        return value if -(2**53) < value < 2**53 else {"int": str(value)}
    if isinstance(value, float):
        return _float(value)
    if depth >= MAX_DEPTH:
        return {"deep": type_name(value)}
    d = depth + 1
    if isinstance(value, complex):
        return {"complex": [_float(value.real), _float(value.imag)]}
    if isinstance(value, bytes | bytearray):
        return {"bytes": bytes(value[:MAX_TEXT]).hex(), "len": len(value)}
    if isinstance(value, enum.Enum):
        return {"enum": type_name(value), "name": value.name}
    np_enc = _numpy(value, d)
    if np_enc is not None:
        return np_enc
    if isinstance(value, list | tuple):
        tag = "list" if isinstance(value, list) else "tuple"
        items = [encode(v, d) for v in value[:MAX_ITEMS]]
        out: dict[str, Json] = {tag: items}
        if type(value) not in (list, tuple):
            out["type"] = type_name(value)
        if len(value) > MAX_ITEMS:
            out["len"] = len(value)
        return out
    if isinstance(value, set | frozenset):
        items = sorted((encode(v, d) for v in value), key=repr)
        return {"set": items[:MAX_ITEMS], "len": len(value)}
    if isinstance(value, Mapping):
        pairs = [[encode(k, d), encode(v, d)] for k, v in list(value.items())[:MAX_ITEMS]]
        return {"dict": sorted(pairs, key=lambda p: repr(p[0])), "len": len(value)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {
            f.name: encode(getattr(value, f.name, None), d) for f in dataclasses.fields(value)
        }
        return {"object": type_name(value), "fields": fields}
    dump = getattr(value, "model_dump", None)
    if callable(dump) and hasattr(type(value), "model_fields"):
        try:
            return {"object": type_name(value), "fields": encode(dump(), d)}
        except Exception:
            pass
    if callable(value) or isinstance(value, type):
        name = getattr(value, "__qualname__", None) or type_name(value)
        return {"callable": f"{getattr(value, '__module__', '?')}.{name}"}
    state = getattr(value, "__dict__", None)
    if isinstance(state, dict):
        fields = {k: encode(v, d) for k, v in sorted(state.items())[:MAX_ITEMS]}
        return {"object": type_name(value), "fields": fields}
    try:
        text = repr(value)
    except Exception as exc:
        text = f"<repr failed: {type(exc).__name__}>"
    # reprs with addresses would differ on every run: they carry no behaviour
    return {"object": type_name(value), "repr": "" if " at 0x" in text else text[:MAX_TEXT]}


def _float(value: float) -> Json:
    if math.isfinite(value):
        return value
    return {"float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}


def _numpy(value: object, depth: int) -> Json | None:
    module = type(value).__module__
    if not module.startswith("numpy"):
        return None
    import numpy as np

    if isinstance(value, np.ndarray):
        flat = value.ravel()
        items = [encode(v, depth) for v in flat[:MAX_ITEMS].tolist()]
        return {"ndarray": str(value.dtype), "shape": list(value.shape), "items": items}
    if isinstance(value, np.generic):
        return {"numpy": str(value.dtype), "value": encode(value.item(), depth)}
    return None


def agree(
    a: Json,
    b: Json,
    rtol: float = 1e-9,
    atol: float = 1e-12,
    rename: Callable[[str], str] = lambda s: s,
    text: Callable[[str], str] = lambda s: s,
) -> str | None:
    """None when ``a`` and ``b`` agree; otherwise where they first differ.

    ``rename`` maps a base-side type or callable name to its candidate-side name, so a pure
    rename of a class is not a divergence. ``text`` maps a base-side string to what the
    candidate is expected to say instead (a renamed module's dotted name in a repr): two
    strings agree when they are equal or the mapped base string equals the candidate's.
    """
    return _diff(a, b, rtol, atol, rename, "", text)


def _diff(
    a: Json,
    b: Json,
    rtol: float,
    atol: float,
    rename: Callable[[str], str],
    at: str,
    text: Callable[[str], str],
) -> str | None:
    if isinstance(a, bool) or isinstance(b, bool):
        return None if a is b else f"{at or 'value'}: {a!r} != {b!r}"
    if isinstance(a, int | float) and isinstance(b, int | float):
        fa, fb = float(a), float(b)
        if fa == fb or math.isclose(fa, fb, rel_tol=rtol, abs_tol=atol):
            return None
        return f"{at or 'value'}: {a!r} != {b!r}"
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return f"{at or 'value'}: {_short(a)} != {_short(b)}"
        for key in a:
            va, vb = a[key], b[key]
            if key in ("object", "enum", "callable", "type", "exception") and isinstance(va, str):
                va = rename(va)
            where = (
                at if key in ("list", "tuple", "items", "fields", "dict", "set") else f"{at}.{key}"
            )
            found = _diff(va, vb, rtol, atol, rename, where, text)
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{at or 'value'}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = _diff(x, y, rtol, atol, rename, f"{at}[{i}]", text)
            if found:
                return found
        return None
    if a == b or (isinstance(a, str) and isinstance(b, str) and text(a) == b):
        return None
    return f"{at or 'value'}: {_short(a)} != {_short(b)}"


def _short(value: Json, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
