"""The one JSON parser: `json.loads`, with NaN and Infinity refused (they are not JSON), and
a number too large for a float (`1e999`, which `json.loads` makes infinite) refused too.

Envelopes, schema files and the CLI's header values are all read with `parse_json`. One
decoder is built once: `json.loads(..., parse_constant=...)` would build a new one per call.
"""

from __future__ import annotations

import json
import math
import threading
from typing import Any

__all__ = ["header_value", "parse_json", "parse_json_exact"]

_EXACT = 2**53  # past it, not every integer is a float: jsonschema-rs compares those otherwise
_integers = threading.local()  # whether the parse in this thread met an integer past _EXACT


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text[:40]} is beyond the range of a float")
    return value


def _integer(text: str) -> int:
    value = int(text)
    if len(text) > 15 and not -_EXACT <= value <= _EXACT:  # 15 characters cannot reach it
        _integers.inexact = True
    return value


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite, parse_int=_integer)


def parse_json(text: str | bytes | bytearray) -> Any:
    """The value `text` holds; bytes are decoded as `json.loads` decodes them (UTF-8, -16 or
    -32). Raises `ValueError` (`json.JSONDecodeError` for bad syntax) and `RecursionError`."""
    if not isinstance(text, str):
        text = bytes(text).decode(json.detect_encoding(text), "surrogatepass")
    return _DECODER.decode(text)


def header_value(raw: str) -> Any:
    """A header value as a person types it: JSON when it parses (`1` is 1, `true` is True,
    `[1, 2]` a list), else the text itself (`eu`). NaN and Infinity are not JSON: kept as text.
    The CLI's `--header NAME=VALUE` and `routing ui`'s page read values by this one rule."""
    try:
        return parse_json(raw)
    except ValueError:
        return raw


def parse_json_exact(text: str | bytes | bytearray) -> tuple[Any, bool]:
    """`parse_json`, and whether every integer in the value is within 2**53 of zero (so a
    float holds it exactly): `SchemaRegistry.validate(parsed=True)` needs to know."""
    _integers.inexact = False
    value = parse_json(text)
    return value, not _integers.inexact
