"""What crosses the wire: `Properties` to and from pika's, and AMQP doubles.

pika 1.3/1.4 cannot encode a float in a field table (it raises) and decodes AMQP floats
and doubles with `int()`, so 1.5 arrives as 1. RabbitMQ compares header values as typed
numbers (1 == 1.0 at the top level, 1.5 != 1), so both directions are fixed here, once, by
wrapping pika's table value codec.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from typing import Any

import pika
import pika.data

from routing._frozen import EMPTY, FrozenDict
from routing.transport.base import Delivery, Properties


class FarTimestamp(int):
    """An AMQP timestamp that `datetime` cannot hold (after the year 9999), as its seconds
    since the epoch; sent again, it is a timestamp again. pika's decoder raises on such a
    value while it reads the frame, which closed the connection: the message came back
    again and again and blocked the queue for every consumer."""

    def __repr__(self) -> str:
        return f"FarTimestamp({int(self)})"


def _encode_value(pieces: list[Any], value: Any) -> int:
    if isinstance(value, FarTimestamp):
        pieces.append(struct.pack(">cQ", b"T", value))
        return 9
    if isinstance(value, float):
        pieces.append(struct.pack(">cd", b"d", value))
        return 9
    return _pika_encode_value(pieces, value)


def _decode_value(encoded: bytes, offset: int) -> tuple[Any, int]:
    kind = encoded[offset : offset + 1]
    if kind == b"d":
        return struct.unpack_from(">d", encoded, offset + 1)[0], offset + 9
    if kind == b"f":
        return struct.unpack_from(">f", encoded, offset + 1)[0], offset + 5
    if kind == b"T":
        seconds = struct.unpack_from(">Q", encoded, offset + 1)[0]
        try:
            return datetime.fromtimestamp(seconds, UTC), offset + 9
        except (OverflowError, OSError, ValueError):
            return FarTimestamp(seconds), offset + 9
    return _pika_decode_value(encoded, offset)


_pika_encode_value = pika.data.encode_value
_pika_decode_value = pika.data.decode_value
if _pika_encode_value.__name__ != "_encode_value":  # once, even if this module is reloaded
    # encode_table, decode_table and arrays look these up by name in pika.data.
    pika.data.encode_value = _encode_value
    pika.data.decode_value = _decode_value


def from_pika(p: Any) -> Properties:
    headers = p.headers
    return Properties(
        content_type=p.content_type,
        content_encoding=p.content_encoding,
        headers=FrozenDict(headers) if headers else EMPTY,
        delivery_mode=p.delivery_mode,
        priority=p.priority,
        correlation_id=p.correlation_id,
        reply_to=p.reply_to,
        expiration=p.expiration,
        message_id=p.message_id,
        timestamp=p.timestamp,
        type=p.type,
        user_id=p.user_id,
        app_id=p.app_id,
    )


def delivery(method: Any, props: Any, body: bytes, queue: str, owner: Any) -> Delivery:
    """A `Delivery` from pika's Basic.Deliver or Basic.GetOk; `owner` acks it."""
    return Delivery(
        body,
        from_pika(props),
        method.exchange,
        method.routing_key,
        queue,
        method.delivery_tag,
        method.redelivered,
        owner,
    )
