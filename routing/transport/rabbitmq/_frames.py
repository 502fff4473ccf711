"""AMQP 0-9-1 frames from the broker's bytes (section 4.2.3): deliveries, returns and confirms
decoded here, everything else cut out whole for pika.

pika decodes every frame through generic machinery (a `Frame` object, a `Method` object, a
callback lookup, a content assembler): about 25 us a delivery, half a consumer's time on
RabbitMQ 4.0. Here one loop over the bytes of a read (`Frames.feed`) yields, in wire order:

- `(DELIVER, channel, consumer_tag, delivery_tag, redelivered, exchange, routing_key,
  properties, body)` once a `basic.deliver`'s content header and body frames are in;
- `(RETURN, channel, reply_code, reply_text, exchange, routing_key, properties, body)`
  for a `basic.return`;
- `(ACK, channel, delivery_tag, multiple)` and `(NACK, channel, delivery_tag, multiple)`;
- `(FRAME, channel, raw)` for any other frame, whole (heartbeats, other methods, a
  `basic.get-ok` and its content), or the 8-byte protocol header a broker answers with when
  it refuses the version: pika's own decoder takes those.

Pure: bytes in, items out. What pika does not check, this does, as the spec says a peer
must (a connection exception, 501 FRAME_ERROR or 505 UNEXPECTED_FRAME): the frame-end
octet, a frame over `frame_max` (a content header excepted: RabbitMQ sends those), an
unknown frame type, a heartbeat off channel 0, a content header or body frame with no
content method before it, a method frame in the middle of a content, more body than the
header announced, a content header whose properties do not fill it exactly. Each is
`FrameError`: the connection ends with it (`_pika`).
"""

from __future__ import annotations

import struct
from typing import Any

from routing.transport.rabbitmq._decode import decode_properties_at

__all__ = ["ACK", "DELIVER", "FRAME", "NACK", "RETURN", "FrameError", "Frames"]

FRAME, DELIVER, RETURN, ACK, NACK = "frame", "deliver", "return", "ack", "nack"

_FRAME = struct.Struct(">BHI")  # type, channel, payload size
_METHOD = struct.Struct(">I")  # class and method ids as one number
_HEADER = struct.Struct(">HHQ")  # class, weight, body size
_U16 = struct.Struct(">H")
_U64 = struct.Struct(">Q")
_FRAME_END = 0xCE
_PROTOCOL = b"AMQP"
_BASIC = 60
_DELIVER = (60 << 16) | 60
_RETURN = (60 << 16) | 50
_ACK = (60 << 16) | 80
_NACK = (60 << 16) | 120
# Other methods that carry content: their frames go to pika whole, and so must their content's.
_OTHER_CONTENT = frozenset({(60 << 16) | 71, (60 << 16) | 40})  # basic.get-ok, basic.publish


class FrameError(ValueError):
    """Bytes no broker may send (`code`: 501 frame error, 505 unexpected frame)."""

    def __init__(self, code: int, problem: str) -> None:
        super().__init__(f"{code} {'FRAME_ERROR' if code == 501 else 'UNEXPECTED_FRAME'}: {problem}")
        self.code = code


def _shortstr(data: bytes, offset: int) -> tuple[str, int]:
    length = data[offset]
    end = offset + 1 + length
    if end > len(data):
        raise IndexError("short string past the end of the frame")
    return data[offset + 1 : end].decode(), end


class Frames:
    """The frames of one connection, read by read. `frame_max`: the negotiated limit on a
    frame's size (0: none), set by the connection once it is tuned."""

    __slots__ = ("_content", "_need", "_parts", "_pikas", "_size", "frame_max")

    def __init__(self, frame_max: int = 0) -> None:
        self.frame_max = frame_max
        self._parts: list[bytes] = []  # bytes of an unfinished frame, not yet joined
        self._size = 0  # their length
        self._need = 0  # how many bytes that frame needs in all
        # Per channel, the content being read here: [the item so far, body size, body parts,
        # body bytes seen (-1: no header yet)].
        self._content: dict[int, list[Any]] = {}
        # Per channel, a content pika assembles (basic.get-ok): body bytes still to come (-1: no header yet).
        self._pikas: dict[int, int] = {}

    def feed(self, data: bytes) -> list[tuple[Any, ...]]:
        """The items completed by `data` (the next bytes read), in wire order. `FrameError` for
        a malformed frame (nothing after it can be trusted: the connection must end)."""
        if self._parts:
            self._parts.append(data)
            self._size += len(data)
            if self._size < self._need:
                return []
            data = b"".join(self._parts)
            self._parts = []
        try:
            out, pos = self._frames(data)
        except FrameError:
            raise
        except (struct.error, IndexError, ValueError) as exc:  # cut short inside a method or header
            raise FrameError(501, f"a malformed frame: {exc}") from exc
        if pos < len(data):
            rest = data[pos:] if pos else data
            self._parts = [rest]
            self._size = len(rest)
        return out

    def _frames(self, data: bytes) -> tuple[list[tuple[Any, ...]], int]:
        out: list[tuple[Any, ...]] = []
        size = len(data)
        pos = 0
        limit = self.frame_max or 0xFFFFFFFF
        content, pikas = self._content, self._pikas
        unpack_frame = _FRAME.unpack_from
        self._need = 8
        while size - pos >= 8:
            kind, channel, length = unpack_frame(data, pos)
            if kind == 65 and data[pos : pos + 4] == _PROTOCOL:  # "AMQP": the version refused
                out.append((FRAME, 0, data[pos : pos + 8]))
                pos += 8
                continue
            if length + 8 > limit and kind != 2:
                # Not for content headers: RabbitMQ (3.10 and 4.0) sends them past frame_max
                # when dead-lettering adds `x-death` to headers already near the limit.
                raise FrameError(501, f"a frame of {length + 8} bytes, over frame_max {limit}")
            end = pos + 7 + length
            if end >= size:
                self._need = length + 8
                break
            if data[end] != _FRAME_END:
                raise FrameError(501, f"frame end octet {data[end]:#04x}, not 0xce")
            start = pos + 7
            if kind == 3:
                state = content.get(channel)
                if state is not None:
                    if state[3] < 0:
                        raise FrameError(505, f"a body frame before the content header on channel {channel}")
                    state[2].append(data[start:end])
                    seen = state[3] = state[3] + length
                    if seen >= state[1]:
                        if seen > state[1]:
                            raise FrameError(501, f"{seen} body bytes on channel {channel}, not {state[1]}")
                        del content[channel]
                        parts = state[2]
                        state[0].append(parts[0] if len(parts) == 1 else b"".join(parts))
                        out.append(tuple(state[0]))
                else:
                    left = pikas.get(channel, -1) - length
                    if left < 0:
                        raise FrameError(505, f"a body frame with no content to fill on channel {channel}")
                    if left:
                        pikas[channel] = left
                    else:
                        del pikas[channel]
                    out.append((FRAME, channel, data[pos : end + 1]))
            elif kind == 1:
                if channel in content or channel in pikas:
                    raise FrameError(505, f"a method frame inside a content on channel {channel}")
                (method,) = _METHOD.unpack_from(data, start)
                if method == _DELIVER:
                    # consumer tag, delivery tag, redelivered, exchange, routing key
                    n = data[start + 4]
                    offset = start + 5 + n
                    tag = data[offset - n : offset].decode()
                    (delivery_tag,) = _U64.unpack_from(data, offset)
                    redelivered = data[offset + 8] & 1 == 1
                    n = data[offset + 9]
                    offset += 10 + n
                    exchange = data[offset - n : offset].decode()
                    n = data[offset]
                    offset += 1 + n
                    key = data[offset - n : offset].decode()
                    if offset > end:
                        raise FrameError(501, "a basic.deliver longer than its frame")
                    # The usual case, a content header and one body frame right after, whole
                    # and well formed, is read here; anything else by the frames' own branches.
                    head = end + 1
                    if size - head >= 8:
                        h_kind, h_channel, h_length = unpack_frame(data, head)
                        h_end = head + 7 + h_length
                        if (
                            h_kind == 2
                            and h_channel == channel
                            and h_end < size
                            and data[h_end] == _FRAME_END
                        ):
                            class_id, _weight, body_size = _HEADER.unpack_from(data, head + 7)
                            properties, offset = decode_properties_at(data, head + 19)
                            if class_id == _BASIC and offset == h_end:
                                b_start = h_end + 8
                                b_end = b_start + body_size
                                if body_size == 0 or (
                                    b_end < size
                                    and _FRAME.unpack_from(data, h_end + 1) == (3, channel, body_size)
                                    and data[b_end] == _FRAME_END
                                    and body_size + 8 <= limit
                                ):
                                    body = data[b_start:b_end] if body_size else b""
                                    out.append(
                                        (
                                            DELIVER,
                                            channel,
                                            tag,
                                            delivery_tag,
                                            redelivered,
                                            exchange,
                                            key,
                                            properties,
                                            body,
                                        )
                                    )
                                    pos = (b_end if body_size else h_end) + 1
                                    continue
                    content[channel] = [
                        [DELIVER, channel, tag, delivery_tag, redelivered, exchange, key],
                        0,
                        [],
                        -1,
                    ]
                elif method in (_ACK, _NACK):
                    if length < 13:
                        raise FrameError(501, "a basic.ack or basic.nack cut short")
                    (delivery_tag,) = _U64.unpack_from(data, start + 4)
                    multiple = bool(data[start + 12] & 1)
                    out.append((ACK if method == _ACK else NACK, channel, delivery_tag, multiple))
                elif method == _RETURN:
                    (code,) = _U16.unpack_from(data, start + 4)
                    text, offset = _shortstr(data, start + 6)
                    exchange, offset = _shortstr(data, offset)
                    key, offset = _shortstr(data, offset)
                    if offset > end:
                        raise FrameError(501, "a basic.return longer than its frame")
                    content[channel] = [[RETURN, channel, code, text, exchange, key], 0, [], -1]
                else:
                    if method in _OTHER_CONTENT:
                        pikas[channel] = -1
                    out.append((FRAME, channel, data[pos : end + 1]))
            elif kind == 2:
                state = content.get(channel)
                if state is not None:
                    if state[3] >= 0:
                        raise FrameError(505, f"a second content header on channel {channel}")
                    class_id, _weight, body_size = _HEADER.unpack_from(data, start)
                    if class_id != _BASIC:
                        raise FrameError(501, f"a content header of class {class_id}, not basic")
                    properties, offset = decode_properties_at(data, start + 12)
                    if offset != end:
                        raise FrameError(501, "a content header its properties do not fill exactly")
                    state[0].append(properties)
                    if body_size == 0:
                        del content[channel]
                        state[0].append(b"")
                        out.append(tuple(state[0]))
                    else:
                        state[1] = body_size
                        state[3] = 0
                else:
                    if pikas.get(channel) != -1:
                        raise FrameError(505, f"a content header with no content method on channel {channel}")
                    (body_size,) = _U64.unpack_from(data, start + 4)
                    if body_size:
                        pikas[channel] = body_size
                    else:
                        del pikas[channel]
                    out.append((FRAME, channel, data[pos : end + 1]))
            elif kind == 8:
                if channel != 0:
                    raise FrameError(501, f"a heartbeat on channel {channel}")
                out.append((FRAME, 0, data[pos : end + 1]))
            else:
                raise FrameError(501, f"frame type {kind}")
            pos = end + 1
        return out, pos
