"""The one JSON loader for what clients send: the DRF parser of the whole API
(control_tower/api/parsers.py) and the device protocols (tracking/ingest/protocols.py).

Python's `json` accepts NaN and Infinity (not JSON, and not storable as a number) and recurses
once per nesting level, so a body of 100,000 `[` raises RecursionError (a 500). Here both are a
`JsonInputError`, which callers answer as a 400 naming the body. No payload of ours nests
deeper than a GeoJSON line inside an object inside a list; MAX_DEPTH leaves room for clients'
own attributes.
"""

from __future__ import annotations

import json

MAX_DEPTH = 32


class JsonInputError(ValueError):
    """The body is not JSON we accept; the message says why."""


def _no_constants(name: str):
    raise ValueError(f"{name} is not JSON")


def _depth_exceeded(value) -> bool:
    """Breadth-first, so a deep value is found without recursion."""
    level = [value]
    for _ in range(MAX_DEPTH):
        level = [
            child
            for item in level
            if isinstance(item, dict | list)
            for child in (item.values() if isinstance(item, dict) else item)
        ]
        if not level:
            return False
    return any(isinstance(item, dict | list) for item in level)


def json_loads(data: bytes | str):
    """Strict JSON (no NaN or Infinity) nested at most MAX_DEPTH levels, else JsonInputError."""
    try:
        value = json.loads(data, parse_constant=_no_constants)
    except RecursionError:
        raise JsonInputError(f"Nested more than {MAX_DEPTH} levels deep.") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise JsonInputError(f"Not valid JSON: {exc}.") from None
    if _depth_exceeded(value):
        raise JsonInputError(f"Nested more than {MAX_DEPTH} levels deep.")
    return value
