"""The one JSON parser: `json.loads`, with NaN and Infinity refused (they are not JSON), and
a number too large for a float (`1e999`, which `json.loads` makes infinite) refused too.

Envelopes, schema files and the CLI's header values are all read with `parse_json`. One
decoder is built once: `json.loads(..., parse_constant=...)` would build a new one per call.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["header_value", "parse_json"]


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text[:40]} is beyond the range of a float")
    return value


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite)


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
