"""AMQP 0-9-1 field tables and short strings, both ways, and what RabbitMQ refuses in them.

Pure functions, no I/O, no pika. The types and tags are RabbitMQ's (its errata of the 0-9-1
spec; `rabbit_binary_parser`/`rabbit_binary_generator`), which is also what Node's amqplib
speaks. A value that cannot be encoded, or that RabbitMQ would answer by closing the
connection, raises `PropertyError` naming its path (`headers.a.b[2]`) before any byte goes:

- floats must be finite: RabbitMQ answers NaN or infinity with 541 INTERNAL_ERROR and
  closes the connection;
- integers must fit a signed 64-bit `l` (RabbitMQ reads both `l` and `L` as signed);
- decimals are `scale: octet, value: long-uint` (unsigned, as in the spec, RabbitMQ's
  parser and amqplib): no negative ones, at most 4294967295 as digits, 255 places;
- text must be UTF-8 (no lone surrogates); names (table keys) at most 255 bytes;
- timestamps are unsigned seconds: none before 1970.
"""

from __future__ import annotations

import calendar
import math
import struct
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from routing._frozen import FrozenDict
from routing.errors import PropertyError

# RabbitMQ refuses TTLs, queue expiries and message expirations above ten years, in ms
# (`rabbit_misc:check_expiry`, {value_too_large, N}); checked live on 3.10.8 and 4.0.5:
# 315360000000 is taken, 315360000001 refused, for x-message-ttl, x-expires and expiration.
MAX_EXPIRY_MS = 315_360_000_000
INT64 = (-(2**63), 2**63 - 1)


class FarTimestamp(int):
    """An AMQP timestamp that `datetime` cannot hold (after the year 9999), as its seconds
    since the epoch; sent again, it is a timestamp again. pika's decoder raised on such a
    value while it read the frame, which closed the connection: the message came back again
    and again and blocked the queue for every consumer."""

    def __repr__(self) -> str:
        return f"FarTimestamp({int(self)})"


_U32_MAX = 2**32 - 1

_LEN = struct.Struct(">I")
_I = struct.Struct(">cI")  # a tag and a length
_INT = struct.Struct(">ci")
_LONG = struct.Struct(">cq")
_DOUBLE = struct.Struct(">cd")
_DECIMAL = struct.Struct(">cBI")
_TIME = struct.Struct(">cQ")
_TRUE, _FALSE, _VOID = b"t\x01", b"t\x00", b"V"


class _Refused(Exception):
    """A value that cannot go; `path` grows as it travels out of nested tables and arrays."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        self.path: list[str] = []


def shortstr(field: str, value: object) -> bytes:
    """A short string (a length octet and UTF-8), or `PropertyError` naming `field`."""
    if not isinstance(value, str):
        raise PropertyError(field, f"must be a string, got {type(value).__name__} {value!r}")
    try:
        raw = value.encode()
    except UnicodeEncodeError:
        raise PropertyError(field, f"is not valid UTF-8 text (a lone surrogate?): {value[:40]!r}") from None
    if len(raw) > 255:
        raise PropertyError(field, f"is {len(raw)} bytes; AMQP allows 255")
    return bytes((len(raw),)) + raw


def encode_table(table: Mapping[str, Any], field: str = "headers") -> bytes:
    """A field table: its length, then name and tagged value pairs. `PropertyError` names
    the first value (`field.key[1].inner`) that cannot be sent."""
    try:
        return _table(table)
    except _Refused as exc:
        raise PropertyError(field + "".join(exc.path), exc.problem) from None


def encode_value(value: Any, field: str = "value") -> bytes:
    """One tagged field value, as in a table or array."""
    try:
        return _value(value)
    except _Refused as exc:
        raise PropertyError(field + "".join(exc.path), exc.problem) from None


def _table(table: Mapping[str, Any]) -> bytes:
    parts: list[bytes] = []
    # A FrozenDict's own dict: Mapping.items() on it costs a lookup per key.
    items = table._data.items() if type(table) is FrozenDict else table.items()
    for key, value in items:
        try:
            parts.append(_name(key))
            parts.append(_value(value))
        except _Refused as exc:
            exc.path.insert(0, _segment(key))
            raise
    body = b"".join(parts)
    return _LEN.pack(len(body)) + body


def _segment(key: object) -> str:
    """`.name` in an error's path; `['odd name']` for names that would not print cleanly."""
    if isinstance(key, str) and key.isprintable() and not set(key) & set(".[] ") and len(key) <= 40:
        try:
            key.encode()
        except UnicodeEncodeError:
            pass
        else:
            return f".{key}"
    shown = key[:40] if isinstance(key, str | bytes) else key
    return f"[{shown!r}{'...' if isinstance(key, str | bytes) and len(key) > 40 else ''}]"


def _name(key: object) -> bytes:
    if isinstance(key, bytes):  # a name that was not UTF-8 when delivered: sent back as it came
        raw = key
    elif isinstance(key, str):
        try:
            raw = key.encode()
        except UnicodeEncodeError:
            raise _Refused("has a name that is not valid UTF-8 text (a lone surrogate?)") from None
    else:
        raise _Refused(f"has a name that is not a string: {type(key).__name__} {key!r}")
    if len(raw) > 255:
        raise _Refused(f"has a name of {len(raw)} bytes; AMQP allows 255")
    return bytes((len(raw),)) + raw


def _value(v: Any) -> bytes:
    kind = type(v)
    if kind is str:
        return _text(v)
    if kind is int:
        return _int(v)
    if kind is bool:
        return _TRUE if v else _FALSE
    if v is None:
        return _VOID
    if kind is float:
        return _float(v)
    if kind is bytes:
        data: bytes = v
        return _I.pack(b"x", len(data)) + data
    if isinstance(v, Mapping):
        return b"F" + _table(v)
    if isinstance(v, list | tuple):
        return _array(v)
    # Subclasses (StrEnum, IntEnum...) and the rarer types.
    if kind is FarTimestamp:
        return _TIME.pack(b"T", v)
    if isinstance(v, bool):
        return _TRUE if v else _FALSE
    if isinstance(v, str):
        return _text(v)
    if isinstance(v, int):
        return _int(v)
    if isinstance(v, float):
        return _float(v)
    if isinstance(v, Decimal):
        return _decimal(v)
    if isinstance(v, datetime):
        return _timestamp(v)
    raise _Refused(f"is a {type(v).__name__}, which an AMQP table cannot carry")


def _text(v: str) -> bytes:
    try:
        raw = v.encode()
    except UnicodeEncodeError:
        raise _Refused(f"is not valid UTF-8 text (a lone surrogate?): {v[:40]!r}") from None
    return _I.pack(b"S", len(raw)) + raw


def _int(v: int) -> bytes:
    if -(2**31) <= v < 2**31:
        return _INT.pack(b"I", v)
    if INT64[0] <= v <= INT64[1]:
        return _LONG.pack(b"l", v)
    raise _Refused(f"is {v}, which does not fit AMQP's signed 64-bit integer; send it as a string")


def _float(v: float) -> bytes:
    if not math.isfinite(v):
        raise _Refused(f"is {v}: RabbitMQ closes the connection for NaN and infinity; send a finite number")
    return _DOUBLE.pack(b"d", v)


def _array(items: list[Any] | tuple[Any, ...]) -> bytes:
    parts: list[bytes] = []
    for i, item in enumerate(items):
        try:
            parts.append(_value(item))
        except _Refused as exc:
            exc.path.insert(0, f"[{i}]")
            raise
    body = b"".join(parts)
    return _I.pack(b"A", len(body)) + body


def _decimal(v: Decimal) -> bytes:
    if not v.is_finite():
        raise _Refused(f"is Decimal({str(v)!r}): AMQP decimals are finite numbers")
    sign, digits, exponent = v.as_tuple()
    assert isinstance(exponent, int)  # finite
    value = int("".join(map(str, digits)))
    if exponent > 0:
        value *= 10**exponent
        scale = 0
    else:
        scale = -exponent
    while (value > _U32_MAX or scale > 255) and scale and value % 10 == 0:  # the same number
        value //= 10
        scale -= 1
    if sign and value:
        raise _Refused(f"is Decimal({str(v)!r}): AMQP decimals are unsigned; send a negative one as a string")
    if value > _U32_MAX or scale > 255:
        raise _Refused(
            f"is Decimal({str(v)!r}), which does not fit an AMQP decimal "
            "(at most 4294967295 as digits, 255 decimal places); send it as a string"
        )
    return _DECIMAL.pack(b"D", scale, value)


def _timestamp(v: datetime) -> bytes:
    seconds = calendar.timegm(v.utctimetuple())  # naive datetimes are taken as UTC, as pika does
    if seconds < 0:
        raise _Refused(f"is {v.isoformat()}, before 1970: AMQP timestamps are unsigned")
    return _TIME.pack(b"T", seconds)


# ------------------------------------------------------------------ decoding


def decode_table(data: bytes, offset: int) -> tuple[dict[str | bytes, Any], int]:
    """The table at `offset` and the offset after it. Names and long strings that are not
    UTF-8 stay bytes, as pika gives them."""
    (size,) = _LEN.unpack_from(data, offset)
    offset += 4
    end = offset + size
    out: dict[str | bytes, Any] = {}
    while offset < end:
        length = data[offset]
        raw = data[offset + 1 : offset + 1 + length]
        offset += 1 + length
        out[_utf8(raw)], offset = decode_value(data, offset)
    return out, offset


def _utf8(raw: bytes) -> str | bytes:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw


# tag -> (struct, size) for the fixed-size numbers; RabbitMQ's tags (`s` is a signed short,
# `U` the spec's, read the same way), `l` and `L` both signed 64-bit.
_FIXED = {
    b"b": struct.Struct(">b"),
    b"B": struct.Struct(">B"),
    b"s": struct.Struct(">h"),
    b"U": struct.Struct(">h"),
    b"u": struct.Struct(">H"),
    b"I": struct.Struct(">i"),
    b"i": struct.Struct(">I"),
    b"l": struct.Struct(">q"),
    b"L": struct.Struct(">q"),
    b"f": struct.Struct(">f"),
    b"d": struct.Struct(">d"),
}
_SCALE = struct.Struct(">BI")
_SECONDS = struct.Struct(">Q")
_MAX_DATETIME = calendar.timegm(datetime.max.utctimetuple())


def decode_value(data: bytes, offset: int) -> tuple[Any, int]:
    """The tagged value at `offset` and the offset after it."""
    tag = data[offset : offset + 1]
    offset += 1
    if tag == b"S":
        (length,) = _LEN.unpack_from(data, offset)
        offset += 4
        return _utf8(data[offset : offset + length]), offset + length
    fixed = _FIXED.get(tag)
    if fixed is not None:
        return fixed.unpack_from(data, offset)[0], offset + fixed.size
    if tag == b"t":
        return data[offset] != 0, offset + 1
    if tag == b"F":
        return decode_table(data, offset)
    if tag == b"A":
        (length,) = _LEN.unpack_from(data, offset)
        offset += 4
        end = offset + length
        items = []
        while offset < end:
            item, offset = decode_value(data, offset)
            items.append(item)
        return items, offset
    if tag == b"x":
        (length,) = _LEN.unpack_from(data, offset)
        offset += 4
        return data[offset : offset + length], offset + length
    if tag == b"T":
        (seconds,) = _SECONDS.unpack_from(data, offset)
        # Beyond year 9999 Python has no datetime: the seconds, rather than an error that
        # would abort the connection for every message behind this one.
        when = datetime.fromtimestamp(seconds, UTC) if seconds <= _MAX_DATETIME else FarTimestamp(seconds)
        return when, offset + 8
    if tag == b"D":
        scale, value = _SCALE.unpack_from(data, offset)
        return Decimal(value).scaleb(-scale), offset + 5
    if tag == b"V":
        return None, offset
    raise ValueError(f"unknown AMQP field type {tag!r} at offset {offset - 1}")
