"""`basic.publish` on the wire, from our `Properties` straight to bytes (AMQP 0-9-1, section 4.2),
and the arguments of the methods that carry a field table (declare, bind, unbind).

pika builds a `BasicProperties` object and marshals each frame through generic code: about
20 us a message, half the client's time in a confirmed-publishing loop. The frames here are
the same bytes (a test compares them with pika's over generated properties). Properties and
their header tables are encoded, and checked, by `routing.properties.encode_properties`
(our own table codec, `routing._amqp`): the embedded broker refuses with the same check.
Declare and bind arguments go through the same table codec (pika's cannot encode a float);
`_pika.rpc` sends them. Each is compared with pika's bytes in a test.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any

from routing._amqp import encode_table, shortstr
from routing.properties import check_header_size, encode_properties

__all__ = [
    "ACK",
    "NACK",
    "REJECT",
    "bind",
    "encode_properties",
    "exchange_declare",
    "publish_frames",
    "queue_declare",
    "settle_frame",
]

_FRAME_END = b"\xce"
_PUBLISH = struct.pack(">HHH", 60, 40, 0)  # basic.publish, ticket 0
_HEADER = struct.Struct(">BHIHHQ")  # frame type 2, channel, size; class 60, weight 0, body size
_FRAME = struct.Struct(">BHI")
_HEADER_FIXED = 12  # class, weight and body size, before the property flags


def publish_frames(
    channel: int,
    exchange: str,
    routing_key: str,
    mandatory: bool,
    properties: bytes,
    body: bytes,
    body_max: int,
) -> bytes:
    """Method, content header and body frames of one message, joined. `properties` comes
    from `encode_properties`; bodies longer than `body_max` (frame_max less the 8 bytes of
    frame overhead) take several frames. `PropertyError` for an exchange or routing key
    AMQP cannot carry, or properties too large for one frame."""
    method = _PUBLISH + shortstr("exchange", exchange) + shortstr("routing_key", routing_key)
    method += b"\x01" if mandatory else b"\x00"
    if _HEADER_FIXED + len(properties) > body_max:
        check_header_size(properties, body_max + 8)
    size = len(body)
    out = [
        _FRAME.pack(1, channel, len(method)),
        method,
        _FRAME_END,
        _HEADER.pack(2, channel, _HEADER_FIXED + len(properties), 60, 0, size),
        properties,
        _FRAME_END,
    ]
    for start in range(0, size, body_max):
        chunk = body[start : start + body_max]
        out += (_FRAME.pack(3, channel, len(chunk)), chunk, _FRAME_END)
    return b"".join(out)


# basic.ack, basic.nack, basic.reject: a delivery tag and one octet of bits (multiple 1,
# requeue 2 for a nack; requeue 1 for a reject).
ACK, NACK, REJECT = 80, 120, 90
_SETTLE = struct.Struct(">BHIHHQBB")


def settle_frame(channel: int, method: int, delivery_tag: int, bits: int) -> bytes:
    """The frame of an ack, nack or reject (`method`) of `delivery_tag` on `channel`."""
    return _SETTLE.pack(1, channel, 13, 60, method, delivery_tag, bits, 0xCE)


_TICKET = b"\x00\x00"


def _bits(*flags: bool) -> bytes:
    return bytes((sum(1 << i for i, flag in enumerate(flags) if flag),))


def _arguments(arguments: Mapping[str, Any] | None) -> bytes:
    return encode_table(arguments or {}, "arguments")


def exchange_declare(
    exchange: str,
    exchange_type: str = "direct",
    *,
    passive: bool = False,
    durable: bool = False,
    auto_delete: bool = False,
    internal: bool = False,
    arguments: Mapping[str, Any] | None = None,
) -> bytes:
    """`exchange.declare`'s arguments (no-wait off)."""
    name = shortstr("exchange", exchange) + shortstr("type", exchange_type)
    return _TICKET + name + _bits(passive, durable, auto_delete, internal) + _arguments(arguments)


def queue_declare(
    queue: str,
    *,
    passive: bool = False,
    durable: bool = False,
    exclusive: bool = False,
    auto_delete: bool = False,
    arguments: Mapping[str, Any] | None = None,
) -> bytes:
    """`queue.declare`'s arguments (no-wait off)."""
    flags = _bits(passive, durable, exclusive, auto_delete)
    return _TICKET + shortstr("queue", queue) + flags + _arguments(arguments)


def bind(
    destination: str,
    source: str,
    routing_key: str,
    arguments: Mapping[str, Any] | None = None,
    *,
    nowait_octet: bool = True,
) -> bytes:
    """The arguments of `queue.bind`, `exchange.bind` and `exchange.unbind` (destination,
    source, key, no-wait off, table); `queue.unbind` has no no-wait octet (`nowait_octet=False`)."""
    names = shortstr("destination", destination) + shortstr("source", source)
    names += shortstr("routing_key", routing_key)
    return _TICKET + names + (b"\x00" if nowait_octet else b"") + _arguments(arguments)
