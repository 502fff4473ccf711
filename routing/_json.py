"""The one JSON parser: `json.loads`, with NaN and Infinity refused (they are not JSON), and
a number too large for a float (`1e999`, which `json.loads` makes infinite) refused too.

Envelopes, schema files and the CLI's header values are all read with `parse_json`. One
decoder is built once: `json.loads(..., parse_constant=...)` would build a new one per call.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["parse_json"]


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
