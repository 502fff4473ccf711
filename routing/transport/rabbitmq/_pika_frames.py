"""pika's frame objects beside ours: pika's frame decoder with our content-header codec
(`decode_frame`), the frames pika would have read for one of `_frames`' items
(`pika_frames`), where a channel's items go past pika (`Route`), and a method whose
arguments we encoded (`Prepared`). pika's public frame
API only; `_pika` (the one module that touches pika's private attributes) drives them.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from pika import amqp_object, frame, spec

from routing.properties import Properties
from routing.transport.rabbitmq._decode import decode_properties
from routing.transport.rabbitmq._frames import ACK, DELIVER, NACK, FrameError

__all__ = ["Prepared", "Route", "decode_frame", "pika_frames"]

_FRAME = struct.Struct(">BHI")
_HEADER = struct.Struct(">HHQ")  # class, weight, body size
_FRAME_END = 0xCE
_BASIC = 60


def decode_frame(data: bytes) -> tuple[int, Any]:
    """pika's `decode_frame`, but content headers of class basic through our codec (a
    malformed one: `FrameError`)."""
    if data[:1] != b"\x02" or len(data) < 7:
        return frame.decode_frame(data)  # type: ignore[no-any-return]
    _type, channel, size = _FRAME.unpack_from(data, 0)
    end = 7 + size + 1
    if end > len(data):
        return 0, None
    if data[end - 1] != _FRAME_END:
        raise FrameError(501, "frame end octet missing")
    payload = data[7 : end - 1]
    try:
        class_id, _weight, body_size = _HEADER.unpack_from(payload, 0)
        if class_id != _BASIC:
            return frame.decode_frame(data)  # type: ignore[no-any-return]
        # The properties go on as our `Properties`: pika only passes them along.
        properties = decode_properties(payload, _HEADER.size)
    except (struct.error, IndexError, ValueError) as exc:  # a header frame no broker sends
        raise FrameError(501, f"malformed content header: {exc}") from exc
    return end, frame.Header(channel, body_size, properties)


class Route:
    """Where a channel's deliveries, confirms and returns go, past pika (see `_Codec`)."""

    __slots__ = ("on_ack", "on_delivery", "on_nack", "on_return", "tag")

    def __init__(self) -> None:
        self.tag: str | None = None  # the consumer's tag, for `on_delivery`
        self.on_delivery: Callable[..., None] | None = None
        self.on_ack: Callable[[int, bool], None] | None = None
        self.on_nack: Callable[[int, bool], None] | None = None
        self.on_return: Callable[..., None] | None = None


def pika_frames(item: tuple[Any, ...]) -> list[Any]:
    """The pika frames of a `_frames` delivery, return, ack or nack (for a channel not routed here)."""
    kind, channel = item[0], item[1]
    if kind is ACK or kind is NACK:
        method: Any = spec.Basic.Ack(item[2], item[3]) if kind is ACK else spec.Basic.Nack(item[2], item[3])
        return [frame.Method(channel, method)]
    if kind is DELIVER:
        method = spec.Basic.Deliver(item[2], item[3], item[4], item[5], item[6])
    else:
        method = spec.Basic.Return(item[2], item[3], item[4], item[5])
    properties: Properties = item[-2]
    body: bytes = item[-1]
    frames = [frame.Method(channel, method), frame.Header(channel, len(body), properties)]
    return [*frames, frame.Body(channel, body)] if body else frames


class Prepared(amqp_object.Method):  # type: ignore[misc]
    """A method whose arguments we encoded; pika frames and sends it as it is."""

    synchronous = True

    def __init__(self, like: Any, payload: bytes) -> None:
        self.INDEX = like.INDEX
        self.NAME = like.NAME
        self._payload = payload

    def encode(self) -> list[bytes]:
        return [self._payload]
