"""The headers exchange's rule (`rabbit_exchange_type_headers`), per RabbitMQ release.

How values compare was measured, not read: `tests/data/headers_types.json` holds every pair of
AMQP field types through a headers exchange on live 3.10.8 and 4.0.5
(`tests/data/make_headers_types.py`). What it shows:

- At the top level the field type is dropped: ints of every width are one number, longstr and
  binary of the same bytes are equal, an empty array equals an empty table. A bool is never a
  number, a decimal only equals a decimal with the same scale and digits.
- 3.10 compares with Erlang `==`: 1 equals 1.0, 0.0 equals -0.0, and a timestamp is its seconds
  (it equals an int or a float of that many seconds). 4.0 compares with `=:=`: an int is never
  a float, 0.0 is not -0.0, and a timestamp *header* is compared in milliseconds (a binding
  1577836800000 matches the header for 2020-01-01; a timestamp binding keeps its seconds, so it
  matches an int header of seconds and not the same timestamp header).
- Inside arrays and tables every element keeps its field type: `[1]` is not `[1.0]`, `["a"]`
  is not `[b"a"]`, tables compare in order.

Python values stand for the field types the toolkit's encoder (and pika) give them: int is a
signedint (a long beyond 32 bits), float a double, str a longstr, bytes a binary, datetime a
timestamp, Decimal a normalized decimal, None void, list/tuple an array, a mapping a table.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from routing.profiles import Profile

_INT32 = range(-(2**31), 2**31)


def _seconds(value: datetime) -> int:
    return calendar.timegm(value.utctimetuple())  # as the encoder sends it: whole seconds, UTC


def _float(value: float, profile: Profile) -> tuple[Any, ...]:
    # Erlang `==` has 0.0 == -0.0; `=:=` (4.0) tells them apart.
    return (value,) if profile.headers_numeric_coercion else (value, math.copysign(1.0, value))


def _top(value: Any, profile: Profile, *, header: bool) -> tuple[Any, ...]:
    """A value at the top of a header table as the broker compares it: without its field type."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, datetime):
        seconds = _seconds(value)
        if header and profile.headers_timestamp_in_ms:
            seconds *= 1000
        value = seconds
    if isinstance(value, int):
        return ("number", value) if profile.headers_numeric_coercion else ("int", value)
    if isinstance(value, float):
        return ("number" if profile.headers_numeric_coercion else "float", *_float(value, profile))
    if isinstance(value, str):
        return ("bytes", value.encode("utf-8", "surrogatepass"))
    if isinstance(value, bytes | bytearray):
        return ("bytes", bytes(value))
    if isinstance(value, Decimal):
        return ("decimal", value.normalize().as_tuple())
    if isinstance(value, Mapping):
        return ("list", tuple((k, _typed(v, profile)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return ("list", tuple(_typed(v, profile) for v in value))
    if value is None:
        return ("void",)
    return ("other", type(value).__name__, value)


def _typed(value: Any, profile: Profile) -> tuple[Any, ...]:
    """A value inside an array or table: its field type is part of it."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, datetime):
        return ("timestamp", _seconds(value))
    if isinstance(value, int):
        return ("signedint" if value in _INT32 else "long", value)
    if isinstance(value, float):
        return ("double", *_float(value, profile))
    if isinstance(value, str):
        return ("longstr", value.encode("utf-8", "surrogatepass"))
    if isinstance(value, bytes | bytearray):
        return ("binary", bytes(value))
    if isinstance(value, Decimal):
        return ("decimal", value.normalize().as_tuple())
    if isinstance(value, Mapping):
        return ("table", tuple((k, _typed(v, profile)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return ("array", tuple(_typed(v, profile) for v in value))
    if value is None:
        return ("void",)
    return ("other", type(value).__name__, value)


def values_equal(binding_value: Any, header_value: Any, profile: Profile) -> bool:
    """Whether a binding's value equals a message header's value, as `profile`'s release decides."""
    kind = type(binding_value)
    if kind is type(header_value) and (kind is str or kind is int or kind is bytes):
        return bool(binding_value == header_value)  # the common case, alike on every release
    return _top(binding_value, profile, header=False) == _top(header_value, profile, header=True)
