"""The broker's limit for confirmed publishing: a plain socket, the frames of one message built
once, confirms counted off the wire. No client library, so no client cost but a `send` per
batch and the parsing of acks: what a client could at best reach on this broker.

Just enough AMQP 0-9-1 (PLAIN login, one channel, `confirm.select`, `basic.publish` in a
window of `WINDOW` unconfirmed, `basic.ack`/`basic.nack` read back); written from the spec,
independent of `routing`'s own transport. Every method frame it does not expect is an error.
"""

from __future__ import annotations

import socket
import struct
from urllib.parse import unquote, urlsplit

from bench.stats import Stopwatch, Timed
from routing import Properties
from routing.properties import encode_properties

WINDOW = 1000  # as the other pipelining contenders
_FRAME_END = b"\xce"
_HEADER = struct.Struct(">BHI")


def _frame(kind: int, channel: int, payload: bytes) -> bytes:
    return _HEADER.pack(kind, channel, len(payload)) + payload + _FRAME_END


def _method(channel: int, class_id: int, method_id: int, arguments: bytes = b"") -> bytes:
    return _frame(1, channel, struct.pack(">HH", class_id, method_id) + arguments)


def _short(text: str) -> bytes:
    raw = text.encode()
    return bytes((len(raw),)) + raw


def _long(raw: bytes) -> bytes:
    return struct.pack(">I", len(raw)) + raw


class _Wire:
    """Frames off a socket: (type, channel, payload)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()

    def frames(self) -> list[tuple[int, int, bytes]]:
        """Every whole frame read by one `recv` (at least one)."""
        out: list[tuple[int, int, bytes]] = []
        while not out:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("raw socket: the broker closed the connection")
            self.buffer += chunk
            while len(self.buffer) >= 7:
                kind, channel, size = _HEADER.unpack_from(self.buffer)
                if len(self.buffer) < 8 + size:
                    break
                out.append((kind, channel, bytes(self.buffer[7 : 7 + size])))
                del self.buffer[: 8 + size]
        return out

    def expect(self, class_id: int, method_id: int) -> bytes:
        """The arguments of the next method frame, which must be `class_id.method_id`."""
        while True:
            for kind, _channel, payload in self.frames():
                if kind == 8:  # heartbeat
                    continue
                got = struct.unpack_from(">HH", payload)
                if kind != 1 or got != (class_id, method_id):
                    raise RuntimeError(f"raw socket: expected method {class_id}.{method_id}, got {got}")
                return payload[4:]


def _connect(url: str) -> tuple[socket.socket, _Wire]:
    parts = urlsplit(url)
    vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
    sock = socket.create_connection((parts.hostname or "localhost", parts.port or 5672))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    wire = _Wire(sock)
    sock.sendall(b"AMQP\x00\x00\x09\x01")
    wire.expect(10, 10)  # connection.start
    login = f"\0{unquote(parts.username or 'guest')}\0{unquote(parts.password or 'guest')}".encode()
    sock.sendall(_method(0, 10, 11, b"\0\0\0\0" + _short("PLAIN") + _long(login) + _short("en_US")))
    channel_max, frame_max, _heartbeat = struct.unpack_from(">HIH", wire.expect(10, 30))  # tune
    sock.sendall(_method(0, 10, 31, struct.pack(">HIH", channel_max, frame_max, 0)))  # no heartbeats
    sock.sendall(_method(0, 10, 40, _short(vhost) + _short("") + b"\0"))
    wire.expect(10, 41)  # connection.open-ok
    sock.sendall(_method(1, 20, 10, _short("")))
    wire.expect(20, 11)  # channel.open-ok
    sock.sendall(_method(1, 85, 10, b"\0"))
    wire.expect(85, 11)  # confirm.select-ok
    return sock, wire


def publish(url: str, queue: str, body: bytes, props: Properties, n: int) -> Timed:
    """`n` persistent publishes of `body` to `queue` through the default exchange, at most
    `WINDOW` unconfirmed, each batch in one `sendall`; timed until the last confirm."""
    sock, wire = _connect(url)
    try:
        message = (
            _method(1, 60, 40, b"\0\0" + _short("") + _short(queue) + b"\0")
            + _frame(2, 1, struct.pack(">HHQ", 60, 0, len(body)) + encode_properties(props))
            + _frame(3, 1, body)
        )
        sent = confirmed = nacked = 0
        done: set[int] = set()  # tags confirmed one by one above `confirmed`
        watch = Stopwatch()
        while confirmed < n:
            room = min(n, confirmed + WINDOW) - sent
            if room > 0:
                sock.sendall(message * room)
                sent += room
            for kind, _channel, payload in wire.frames():
                if kind != 1:
                    continue
                class_id, method_id = struct.unpack_from(">HH", payload)
                if (class_id, method_id) not in ((60, 80), (60, 120)):
                    raise RuntimeError(f"raw socket: unexpected method {class_id}.{method_id}")
                tag, bits = struct.unpack_from(">QB", payload, 4)
                nacked += method_id == 120
                if bits & 1:  # multiple
                    confirmed = max(confirmed, tag)
                    done = {t for t in done if t > confirmed}
                else:
                    done.add(tag)
                while confirmed + 1 in done:
                    confirmed += 1
                    done.discard(confirmed)
        timed = watch.stop()
        if nacked:
            raise RuntimeError(f"raw socket: {nacked} nacks")
        sock.sendall(_method(0, 10, 50, struct.pack(">H", 200) + _short("") + b"\0\0\0\0"))
        wire.expect(10, 51)  # connection.close-ok
        return timed
    finally:
        sock.close()
