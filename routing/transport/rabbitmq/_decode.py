"""A content header's properties from the wire into `Properties` (AMQP 0-9-1, section 4.2.6.1).

The other half of `routing.properties.encode_properties`, with our field-table decoder
(`routing._amqp`): pika's reads AMQP floats with `int()` (1.5 arrives as 1) and decimals as
signed (amqplib's and RabbitMQ's are unsigned). Pure: the connection (`_pika`) calls it on
each content header frame it reads.
"""

from __future__ import annotations

import struct
from typing import Any

from routing._amqp import decode_table
from routing._frozen import EMPTY, FrozenDict
from routing.properties import Properties

__all__ = ["decode_properties", "decode_properties_at"]

_FLAGS = struct.Struct(">H")
_SECONDS = struct.Struct(">Q")
# (property, flag bit, kind) in wire order: s shortstr, t table, o octet, Q timestamp.
_FIELDS = (
    ("content_type", 15, "s"),
    ("content_encoding", 14, "s"),
    ("headers", 13, "t"),
    ("delivery_mode", 12, "o"),
    ("priority", 11, "o"),
    ("correlation_id", 10, "s"),
    ("reply_to", 9, "s"),
    ("expiration", 8, "s"),
    ("message_id", 7, "s"),
    ("timestamp", 6, "Q"),
    ("type", 5, "s"),
    ("user_id", 4, "s"),
    ("app_id", 3, "s"),
    # bit 2 is the deprecated cluster_id: read and dropped, as pika's did not reach us either
    ("cluster_id", 2, "s"),
)


def decode_properties(data: bytes, offset: int = 0) -> Properties:
    """The property flags and list at `offset` (after class, weight and body size)."""
    return decode_properties_at(data, offset)[0]


def decode_properties_at(data: bytes, offset: int) -> tuple[Properties, int]:
    """`decode_properties`, and the offset just past the property list."""
    (flags,) = _FLAGS.unpack_from(data, offset)
    offset += 2
    if not flags:
        return _NONE, offset
    plan = _PLANS.get(flags)
    if plan is None:
        plan = _PLANS[flags] = tuple((name, kind) for name, bit, kind in _FIELDS if flags & (1 << bit))
    values: dict[str, Any] = {}
    for name, kind in plan:
        if kind == "s":
            end = offset + 1 + data[offset]
            try:
                values[name] = data[offset + 1 : end].decode()
            except UnicodeDecodeError:  # kept as it came, as pika gives it
                values[name] = data[offset + 1 : end]
            offset = end
        elif kind == "o":
            values[name] = data[offset]
            offset += 1
        elif kind == "Q":
            (values[name],) = _SECONDS.unpack_from(data, offset)
            offset += 8
        else:
            table, offset = decode_table(data, offset)
            values[name] = FrozenDict(table) if table else EMPTY  # type: ignore[arg-type]  # bytes names too
    if flags & 4:
        del values["cluster_id"]
    return Properties(**values), offset


# The fields each set of property flags has, in wire order (few sets are seen).
_PLANS: dict[int, tuple[tuple[str, str], ...]] = {}
_NONE = Properties()
