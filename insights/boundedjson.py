"""Bounded JSON decoding for everything untrusted: API bodies, webhook payloads, NDJSON lines.

`loads()` is the one parser every entry point uses, so hostile JSON fails the same way
everywhere, as a `JsonInputError` (a 400 or a numbered line error), never as a 500:
- nesting deeper than `MAX_DEPTH` arrays/objects (the stdlib parser and encoder recurse, so a
  1,000-deep body was a RecursionError when parsed or when its raw payload was stored);
- numbers beyond 64 bits: an integer literal of thousands of digits (the stdlib raises
  ValueError past 4,300 digits), floats that overflow to infinity, `NaN` / `Infinity`;
- strings that are not valid Unicode: invalid UTF-8 bytes and lone surrogates (`"\\ud800"`),
  which no database encoding can store.

orjson does the parsing (strict RFC 8259, no recursion limit surprises, fast); a short
iterative walk then bounds depth and integers.

>>> loads(b'{"a": [1, 2]}')
{'a': [1, 2]}
"""

from __future__ import annotations

import math
from typing import Any

import orjson

MAX_DEPTH = 64  # the deepest real payload we map (a GitHub webhook) nests about 8 levels
INT_LIMIT = 2**63  # integers must fit a signed 64-bit column


class JsonInputError(ValueError):
    """Input that is not bounded, valid JSON; `str()` is a one-line reason (no input echoed)."""


def _check_number(value: int | float) -> None:
    if type(value) is int:
        if not -INT_LIMIT <= value < INT_LIMIT:
            raise JsonInputError("integer outside the 64-bit range")
    # orjson reads integers past 64 bits as floats; keep only what a double holds exactly
    elif not math.isfinite(value) or (value.is_integer() and abs(value) >= INT_LIMIT):
        raise JsonInputError("number outside the 64-bit range")


def _walk(value: Any) -> None:
    """Raise `JsonInputError` when `value` nests deeper than `MAX_DEPTH` or holds a number we
    cannot store. Level by level, so it cannot itself exhaust the stack; only containers are
    queued (this walk runs on every NDJSON line, so it stays lean)."""
    if type(value) in (int, float):
        _check_number(value)
        return
    level = [value] if type(value) in (dict, list) else []
    depth = 0
    while level:
        depth += 1
        if depth > MAX_DEPTH:
            raise JsonInputError(f"nested deeper than {MAX_DEPTH} levels")
        deeper = []
        for node in level:
            for child in node.values() if type(node) is dict else node:
                kind = type(child)
                if kind is dict or kind is list:
                    deeper.append(child)
                elif kind is int or kind is float:
                    _check_number(child)
        level = deeper


def loads(data: bytes | str) -> Any:
    """Decode one JSON document, bounded as the module docstring says.

    >>> try:
    ...     loads("[" * 100 + "]" * 100)
    ... except JsonInputError as exc:
    ...     print(exc)
    nested deeper than 64 levels
    """
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        reason = exc.msg
        if "depth limit" in reason:
            reason = f"nested deeper than {MAX_DEPTH} levels"
        elif "infinity" in reason:
            reason = "number outside the 64-bit range"
        elif "surrogate" in reason or "UTF-8" in reason:
            reason = "not valid Unicode (invalid UTF-8 or a lone surrogate)"
        raise JsonInputError(f"{reason} at line {exc.lineno} column {exc.colno}") from None
    _walk(value)
    return value
