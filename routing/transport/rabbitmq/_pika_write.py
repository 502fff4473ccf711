"""The writing half of `_pika` (apart for size; import it from `_pika`, which checks the pika
version first): one message's frames in one `send` (`FrameWriter`), acks (`settle`), and what a
batch holds back (`hold`, `write_out`). The private attributes it uses are in `_pika._USED`.
"""

from __future__ import annotations

import socket
from typing import Any

from pika.adapters import blocking_connection
from pika.adapters.utils import io_services_utils

from routing.transport.rabbitmq._encode import publish_frames, settle_frame

__all__ = ["BATCH_BYTES", "FrameWriter", "hold", "settle", "write", "write_out"]


def _impl(thing: Any) -> Any:
    """The asynchronous pika object under a blocking connection or channel; an asynchronous
    one (the asyncio transport's) is its own."""
    if isinstance(thing, blocking_connection.BlockingConnection | blocking_connection.BlockingChannel):
        return thing._impl
    return thing


# ------------------------------------------------------------------ the wire

_PLAIN = io_services_utils._AsyncPlaintextTransport
_MORE = getattr(socket, "MSG_MORE", 0)  # Linux; elsewhere every write goes at once


class FrameWriter:
    """Writes `basic.publish` messages for one channel of one pika connection (a blocking
    channel, or an asyncio connection's: both connections write through the same transport).

    pika's `basic_publish` hands the method, header and body frames to its transport one by
    one, and `BlockingChannel` then polls until they are written: three `send` calls, two
    `epoll_ctl` and an `epoll_wait` per message. Here the frames are encoded into one buffer
    (`_encode`) and, when nothing else waits to be written, sent straight on the socket; what
    the socket does not take goes to pika's buffer, so the byte order on the wire is kept and
    pika's I/O loop finishes the write. TLS connections go through pika's buffer as before.
    """

    __slots__ = ("_body_max", "_connection", "_number")

    def __init__(self, channel: Any) -> None:
        impl = _impl(channel)
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
        """Write `frames`; False when part of them waits in pika's buffer (poll to write it)."""
        return write(self._connection, frames)

    def publish(
        self, exchange: str, routing_key: str, body: bytes, properties: bytes, mandatory: bool
    ) -> bool:
        """`frames` and `send` in one."""
        return self.send(self.frames(exchange, routing_key, body, properties, mandatory))


def settle(channel: Any, method: int, delivery_tag: int, bits: int, *, more: bool = False) -> bool:
    """Send an ack, nack or reject (`_encode.settle_frame`) on `channel`, the same way. `more`:
    the caller will send again soon (more deliveries wait to be acked), so the kernel may hold
    this back to send with the next (MSG_MORE; never longer than 200 ms)."""
    impl = _impl(channel)
    return write(impl.connection, settle_frame(impl.channel_number, method, delivery_tag, bits), more=more)


BATCH_BYTES = 64 * 1024  # a batch writes out what it holds once it holds this much


def hold(conn: Any, on: bool) -> bool:
    """Open (`on`) or end a batch on a blocking connection: while open, `write` holds back what
    it is given, and writes it out in one `send` once it holds `BATCH_BYTES`, before pika
    writes a frame, before `pump` waits, and when the batch ends. False when ending it left
    some of it in pika's buffer (poll to write it)."""
    impl = conn._impl
    if on:
        if impl._held is None:
            impl._held = bytearray()
        return True
    done = write_out(impl) if impl._held else True
    impl._held = None
    return done


def write_out(connection: Any) -> bool:
    """Write what a batch holds back on `connection` (pika's), in one `send`; see `write`."""
    held = connection._held
    data = bytes(held)
    held.clear()
    return _write(connection, data, False)


def write(connection: Any, data: bytes, *, more: bool = False) -> bool:
    """Put `data` on the wire after what pika has buffered; False when some of it waits in
    pika's buffer for the I/O loop. In a batch (`hold`), held back: True unless the batch
    was full and its `send` left some in pika's buffer."""
    if connection._transport is None:  # closing: pika raises the right error at the next poll
        return False
    connection.bytes_sent += len(data)
    held = connection._held
    if held is not None:
        held += data
        return len(held) < BATCH_BYTES or write_out(connection)
    return _write(connection, data, more)


def _write(connection: Any, data: bytes, more: bool) -> bool:
    transport = connection._transport
    if transport is None:
        return False
    sent = 0
    if type(transport) is _PLAIN and transport.get_write_buffer_size() == 0:
        try:
            sent = transport._sock.send(data, _MORE if more else 0)
        except OSError:  # would block, interrupted, or broken: pika's write and poll handle it
            sent = 0
    if sent == len(data):
        return True
    transport.write(data[sent:] if sent else data)
    return False
