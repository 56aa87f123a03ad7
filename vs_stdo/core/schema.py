"""How the bundle manifest's typed records are checked: every part (mapping, clip, colour, models, router, training,
alignment, the manifest itself) is a msgspec Struct whose field types carry their ranges (`Annotated[int,
Meta(ge=, le=)]`), read by one function, `read`, with msgspec's strict conversion.

A manifest is untrusted input: `read` refuses anything that is not exactly of its record's types (no bool for an
int, no text for a number, no unknown field where the record forbids them) with a ValueError naming the field by
its path and what is wrong, e.g. "clip.width: expected `int` >= 1, got 0". Cross-field rules live in each record's
`__post_init__`, which msgspec runs on reading as on building. Building a record in code checks no ranges; the
bundle writer reads what it writes back through `read` (bundle.to_bytes), so no bundle is written that would not
load, and `checked` does the same for one record.
"""
from __future__ import annotations

import math
import re
import sys
from typing import Annotated, Any, TypeVar

import msgspec
from msgspec import Meta

T = TypeVar("T")

# A finite float: NaN fails every comparison and the infinities lie beyond the largest float.
Finite = Annotated[float, Meta(ge=-sys.float_info.max, le=sys.float_info.max)]
Count = Annotated[int, Meta(ge=0, le=1 << 40)]   # how many of something, or a frame number
Side = Annotated[int, Meta(ge=1, le=1 << 16)]    # a frame's width or height in pixels
_STEP = re.compile(r"\.([^.\[]+)|\[(\d+)\]")
_ABSENT = object()


def read(obj: Any, record: type[T], what: str) -> T:
    """`obj` (plain JSON data) as a `record`, checked strictly; ValueError "`what` field PATH: what is wrong, got
    VALUE" (`what` alone when the whole object is wrong)."""
    try:
        return msgspec.convert(obj, record, strict=True)
    except msgspec.ValidationError as e:
        raise ValueError(described(e, obj, what)) from None


def checked(record: T, what: str) -> T:
    """`record` (built in code) checked as `read` checks it; ValueError naming the field that is out of range."""
    return read(builtins(record), type(record), what)


def builtins(record: Any) -> Any:
    """A record as plain JSON data (dicts, lists, numbers, text)."""
    return msgspec.to_builtins(record)


def described(e: msgspec.ValidationError, obj: Any, what: str) -> str:
    """msgspec's "Expected `int` >= 1 - at `$.clip.width`" as "`what` field clip.width: expected `int` >= 1, got 0"."""
    text, _, path = str(e).partition(" - at `")
    path = path.rstrip("`").removeprefix("$").lstrip(".")
    text = (text[:1].lower() + text[1:]).replace("invalid enum value", "invalid value")
    value = _at(obj, path)
    if isinstance(value, float) and not math.isfinite(value):
        text = "expected a finite number"
    if value is not _ABSENT and text.startswith("expected") and ", got `" not in text:
        text += f", got {value!r:.60}"
    return f"{what} field {path}: {text}" if path else f"{what}: {text}"


def _at(obj: Any, path: str) -> Any:
    """The value at a msgspec path (`clip.sample[3]`) inside `obj`, or _ABSENT."""
    for key, index in _STEP.findall("." + path if path else ""):
        try:
            obj = obj[key] if key else obj[int(index)]
        except (KeyError, IndexError, TypeError):
            return _ABSENT
    return obj
