"""The publishing fast path: a message's frames in one buffer, sent without a poll.

pika's `basic_publish` hands the method, header and body frames to its transport one by
one, and `BlockingChannel` then polls until they are written: three `send` calls, two
`epoll_ctl` and an `epoll_wait` per message. That was most of the client's time in a
confirmed-publishing profile. Here the frames are encoded into one buffer (`_encode`) and,
when nothing else is waiting to be written, sent straight on the socket; what the socket
does not take goes to pika's buffer, so the byte order on the wire is kept and pika's I/O
loop finishes the write. TLS connections go through pika's buffer as before.
"""

from __future__ import annotations

import socket
from typing import Any

from pika import frame

from routing.transport.rabbitmq._encode import publish_frames

_PLAIN = "_AsyncPlaintextTransport"
_MORE = getattr(socket, "MSG_MORE", 0)  # Linux; elsewhere every write goes at once


class FrameWriter:
    """Writes `basic.publish` messages for one channel of one pika connection."""

    __slots__ = ("_body_max", "_connection", "_number")

    def __init__(self, channel: Any) -> None:
        impl = channel._impl
        self._connection = impl.connection
        self._number = impl.channel_number
        self._body_max = self._connection._body_max_length  # frame_max less the frame overhead

    def frames(
        self, exchange: str, routing_key: str, body: bytes, properties: bytes, mandatory: bool
    ) -> bytes:
        """One message's frames (`properties` from `encode_properties`); `PropertyError`
        for what this connection cannot send (a header too large for its frame_max)."""
        return publish_frames(
            self._number, exchange, routing_key, mandatory, properties, body, self._body_max
        )

    def send(self, frames: bytes) -> bool:
        """Write frames from `frames`; False when part of them waits in pika's buffer (poll
        to write it)."""
        return write(self._connection, frames)

    def publish(
        self, exchange: str, routing_key: str, body: bytes, properties: bytes, mandatory: bool
    ) -> bool:
        """`frames` and `send` in one."""
        return self.send(self.frames(exchange, routing_key, body, properties, mandatory))


def send_method(channel: Any, method: Any, *, more: bool = False) -> bool:
    """Send one content-less method (an ack, say) on `channel`, the same way. `more`: the
    caller will send again soon (more deliveries wait to be acked), so the kernel may hold
    this back to send with the next (MSG_MORE; never longer than 200 ms)."""
    impl = channel._impl
    return write(impl.connection, frame.Method(impl.channel_number, method).marshal(), more=more)


def write(connection: Any, data: bytes, *, more: bool = False) -> bool:
    """Put `data` on the wire after what pika has buffered; False when some of it waits in
    pika's buffer for the I/O loop."""
    transport = connection._transport
    if transport is None:  # closing: pika raises the right error at the next poll
        return False
    connection.bytes_sent += len(data)
    sent = 0
    if type(transport).__name__ == _PLAIN and transport.get_write_buffer_size() == 0:
        try:
            sent = transport._sock.send(data, _MORE if more else 0)
        except OSError:  # would block, interrupted, or broken: pika's write and poll handle it
            sent = 0
    if sent == len(data):
        return True
    transport.write(data[sent:] if sent else data)
    return False
