"""AMQP 0-9-1 basic properties as a frozen value, and the check both transports make.

It lives below both `envelope` (which maps an envelope onto it) and `transport` (which sends
it), so that neither has to import the other. `routing.transport.base` re-exports it.

`check_message(exchange, routing_key, properties)` is the one place that decides whether a
message can be sent: the RabbitMQ transport encodes with `encode_properties` (which checks
as it goes) and the embedded broker calls `check_message`, so both refuse the same values
with the same `PropertyError`, before anything is sent or routed.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from routing._amqp import MAX_EXPIRY_MS, encode_table, shortstr
from routing._frozen import EMPTY, FrozenDict
from routing.errors import PropertyError

__all__ = ["FRAME_MAX", "Properties", "check_header_size", "check_message", "encode_properties"]


# RabbitMQ's default (and pika's) frame_max. A content header frame must fit in one frame:
# RabbitMQ answers a larger one with 501 FRAME_ERROR and closes the connection.
FRAME_MAX = 131_072
_SECONDS = struct.Struct(">Q")
_FRAME_OVERHEAD = 8  # type, channel, size; frame end
_HEADER_FIXED = 12  # class, weight, body size (before the property flags and list)


@dataclass(frozen=True, slots=True, kw_only=True)
class Properties:
    """AMQP 0-9-1 basic properties. `timestamp` is seconds since the epoch; `expiration`
    a string of milliseconds, as on the wire. `headers` is frozen (deeply) at construction:
    changing the dict it was built from afterwards changes nothing here."""

    content_type: str | None = None
    content_encoding: str | None = None
    headers: Mapping[str, Any] = EMPTY
    delivery_mode: int | None = None  # 2 = persistent
    priority: int | None = None
    correlation_id: str | None = None
    reply_to: str | None = None
    expiration: str | None = None
    message_id: str | None = None
    timestamp: int | None = None
    type: str | None = None
    user_id: str | None = None
    app_id: str | None = None

    def __post_init__(self) -> None:
        headers = self.headers
        if type(headers) is not FrozenDict:
            if headers is None:
                headers = EMPTY
            elif not isinstance(headers, Mapping):
                raise PropertyError("headers", f"must be a mapping, got {type(headers).__name__}")
            object.__setattr__(self, "headers", FrozenDict(headers) if headers else EMPTY)


# (property, flag bit, kind) in wire order: s shortstr, t table, d delivery mode, o octet,
# e expiration, Q timestamp.
_FIELDS = (
    ("content_type", 15, "s"),
    ("content_encoding", 14, "s"),
    ("headers", 13, "t"),
    ("delivery_mode", 12, "d"),
    ("priority", 11, "o"),
    ("correlation_id", 10, "s"),
    ("reply_to", 9, "s"),
    ("expiration", 8, "e"),
    ("message_id", 7, "s"),
    ("timestamp", 6, "Q"),
    ("type", 5, "s"),
    ("user_id", 4, "s"),
    ("app_id", 3, "s"),
)
_MODES = {1: b"\x01", 2: b"\x02"}
_EXPIRATION = re.compile(r"[+-]?[0-9]+")  # what RabbitMQ's binary_to_integer takes (checked live)


def _integer(name: str, value: object, low: int, high: int, meaning: str) -> int:
    if type(value) is not int and (isinstance(value, bool) or not isinstance(value, int)):
        raise PropertyError(name, f"must be {meaning}, got {type(value).__name__} {value!r}")
    if not low <= value <= high:
        raise PropertyError(name, f"must be {meaning}, got {value}")
    return value


def _expiration(value: object) -> bytes:
    raw = shortstr("expiration", value)
    assert isinstance(value, str)
    if not _EXPIRATION.fullmatch(value) or not 0 <= int(value) <= MAX_EXPIRY_MS:
        raise PropertyError(
            "expiration",
            f"is {value!r}, not a number of milliseconds from 0 to {MAX_EXPIRY_MS} "
            "(RabbitMQ refuses it with 406 and closes the channel)",
        )
    return raw


def encode_properties(p: Properties | None) -> bytes:
    """The property flags and list of a content header; `PropertyError` names the first
    property (or header, by its path) that AMQP cannot carry or RabbitMQ would refuse."""
    if p is None:
        return b"\x00\x00"
    flags = 0
    parts: list[bytes] = []
    for name, bit, kind in _FIELDS:
        value = getattr(p, name)
        if value is None or (kind == "t" and not value):
            continue
        flags |= 1 << bit
        if kind == "s":
            if type(value) is str and len(value) < 128 and value.isascii():  # the common case
                parts.append(bytes((len(value),)) + value.encode())
            else:
                parts.append(shortstr(name, value))
        elif kind == "t":
            if not isinstance(value, Mapping):
                raise PropertyError(name, f"must be a mapping, got {type(value).__name__}")
            parts.append(encode_table(value, name))
        elif kind == "d":
            # 3.10 refuses any other mode (406 delivery_mode_unknown); 4.0 takes any octet
            # but only 1 and 2 mean anything. Checked live on 3.10.8 and 4.0.5.
            if value != 2 or type(value) is not int:
                _integer(name, value, 1, 2, "1 (transient) or 2 (persistent)")
            parts.append(_MODES[value])
        elif kind == "o":
            parts.append(bytes((_integer(name, value, 0, 255, "an integer from 0 to 255"),)))
        elif kind == "Q":
            seconds = _integer(name, value, 0, 2**64 - 1, "seconds since 1970, 0 or more")
            parts.append(_SECONDS.pack(seconds))
        else:
            parts.append(_expiration(value))
    return struct.pack(">H", flags) + b"".join(parts)


def check_header_size(encoded: bytes, frame_max: int = FRAME_MAX) -> None:
    """`PropertyError` when properties encoded by `encode_properties` do not fit in one
    frame of `frame_max` bytes (the content header frame cannot be split)."""
    size = len(encoded) + _HEADER_FIXED + _FRAME_OVERHEAD
    if size > frame_max:
        raise PropertyError(
            "headers",
            f"are too large: the properties take {size} bytes in their frame and the "
            f"connection's frame_max is {frame_max} (RabbitMQ would close the connection)",
        )


def check_message(
    exchange: str, routing_key: str, properties: Properties | None, *, frame_max: int = FRAME_MAX
) -> None:
    """Raise `PropertyError` unless a message with this exchange, routing key and
    properties can be published: what AMQP can carry and RabbitMQ takes. Pure."""
    shortstr("exchange", exchange)
    shortstr("routing_key", routing_key)
    check_header_size(encode_properties(properties), frame_max)
