"""Regenerate `headers_types.json`: which typed header values a headers exchange matches, per release.

    python tests/data/make_headers_types.py \\
        3.10=amqp://guest:guest@127.0.0.1:5672/%2F 4.0=amqp://guest:guest@127.0.0.1:5674/%2F

For every pair (binding value, header value) of the AMQP field types below, the live broker says
whether a message with header `v` = the header value reaches a queue bound with `{"v": binding
value}` (x-match all). The values go on the wire exactly as typed here, through a small AMQP
0-9-1 client of its own (pika and the toolkit's encoder can send only some widths), so every
field type RabbitMQ parses is covered: bool, signed and unsigned ints of each width, float,
double, decimal, longstr, binary, timestamp, void, arrays and tables, nested.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

OUT = Path(__file__).with_name("headers_types.json")

# (type, value): value is an int, float, str, list of typed (array) or list of [key, typed] (table).
T = tuple[str, Any]


def _v(kind: str, value: Any) -> dict[str, Any]:
    return {"type": kind, "value": value}


TS = 1577836800  # 2020-01-01T00:00:00Z
VALUES: list[dict[str, Any]] = [
    _v("bool", True),
    _v("bool", False),
    _v("byte", 1),
    _v("unsignedbyte", 1),
    _v("short", 1),
    _v("unsignedshort", 1),
    _v("signedint", 1),
    _v("unsignedint", 1),
    _v("long", 1),
    _v("signedint", 0),
    _v("signedint", 2),
    _v("long", 2**40),
    _v("float", 1.0),
    _v("double", 1.0),
    _v("double", 2.0),
    _v("double", 1.5),
    _v("double", 0.0),
    _v("double", -0.0),
    _v("double", float(2**40)),
    _v("decimal", [0, 1]),  # [scale, digits]: 1
    _v("decimal", [1, 10]),  # 1.0
    _v("decimal", [1, 15]),  # 1.5
    _v("longstr", "1"),
    _v("binary", "1"),
    _v("longstr", "pdf"),
    _v("binary", "pdf"),
    _v("longstr", ""),
    _v("binary", ""),
    _v("timestamp", TS),
    _v("signedint", TS),
    _v("long", TS),
    _v("long", TS * 1000),
    _v("double", float(TS)),
    _v("void", None),
    _v("array", []),
    _v("array", [_v("signedint", 1)]),
    _v("array", [_v("long", 1)]),
    _v("array", [_v("byte", 1)]),
    _v("array", [_v("double", 1.0)]),
    _v("array", [_v("longstr", "a")]),
    _v("array", [_v("binary", "a")]),
    _v("array", [_v("signedint", 1), _v("longstr", "a")]),
    _v("array", [_v("longstr", "a"), _v("signedint", 1)]),
    _v("array", [_v("timestamp", TS)]),
    _v("array", [_v("double", 0.0)]),
    _v("array", [_v("double", -0.0)]),
    _v("array", [_v("array", [])]),
    _v("array", [_v("table", [])]),
    _v("table", []),
    _v("table", [["k", _v("signedint", 1)]]),
    _v("table", [["k", _v("long", 1)]]),
    _v("table", [["k", _v("double", 1.0)]]),
    _v("table", [["k", _v("longstr", "a")]]),
    _v("table", [["k", _v("binary", "a")]]),
    _v("table", [["a", _v("signedint", 1)], ["b", _v("signedint", 2)]]),
    _v("table", [["b", _v("signedint", 2)], ["a", _v("signedint", 1)]]),
    _v("array", [_v("table", [["k", _v("signedint", 1)]])]),
    _v("table", [["k", _v("array", [_v("signedint", 1)])]]),
    _v("table", [["k", _v("array", [_v("double", 1.0)])]]),
    _v("table", [["k", _v("timestamp", TS)]]),
    _v("table", [["k", _v("long", TS)]]),
]


# ------------------------------------------------------------- the codec

_TAGS = {
    "bool": b"t",
    "byte": b"b",
    "unsignedbyte": b"B",
    "short": b"s",
    "unsignedshort": b"u",
    "signedint": b"I",
    "unsignedint": b"i",
    "long": b"l",
    "float": b"f",
    "double": b"d",
    "decimal": b"D",
    "longstr": b"S",
    "binary": b"x",
    "timestamp": b"T",
    "void": b"V",
    "array": b"A",
    "table": b"F",
}
_PACK = {
    "bool": ">B",
    "byte": ">b",
    "unsignedbyte": ">B",
    "short": ">h",
    "unsignedshort": ">H",
    "signedint": ">i",
    "unsignedint": ">I",
    "long": ">q",
    "float": ">f",
    "double": ">d",
    "timestamp": ">Q",
}


def shortstr(text: str) -> bytes:
    raw = text.encode()
    return bytes((len(raw),)) + raw


def longstr(raw: bytes) -> bytes:
    return struct.pack(">I", len(raw)) + raw


def field(value: dict[str, Any]) -> bytes:
    kind, v = value["type"], value["value"]
    tag = _TAGS[kind]
    if kind in _PACK:
        return tag + struct.pack(_PACK[kind], v)
    if kind == "decimal":
        return tag + struct.pack(">BI", v[0], v[1])
    if kind in ("longstr", "binary"):
        return tag + longstr(v.encode())
    if kind == "void":
        return tag
    if kind == "array":
        return tag + longstr(b"".join(field(item) for item in v))
    return tag + table(v)


def table(entries: list[list[Any]]) -> bytes:
    return longstr(b"".join(shortstr(k) + field(v) for k, v in entries))


class Client:
    """Just enough AMQP 0-9-1 for the table: one channel with confirms, bind, publish, get."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5672), timeout=10)
        self.buf = b""
        self.sock.sendall(b"AMQP\x00\x00\x09\x01")
        start = self.expect(0, 10, 10)
        self.server = start
        user, password = unquote(parts.username or "guest"), unquote(parts.password or "guest")
        response = f"\0{user}\0{password}".encode()
        self.method(0, 10, 11, table([]) + shortstr("PLAIN") + longstr(response) + shortstr("en_US"))
        tune = self.expect(0, 10, 30)
        _, frame_max, _ = struct.unpack(">HIH", tune[:8])
        self.method(0, 10, 31, struct.pack(">HIH", 1, frame_max, 0))
        vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
        self.method(0, 10, 40, shortstr(vhost) + shortstr("") + b"\x00")
        self.expect(0, 10, 41)
        self.method(1, 20, 10, shortstr(""))
        self.expect(1, 20, 11)
        self.method(1, 85, 10, b"\x00")
        self.expect(1, 85, 11)
        self.published = 0

    def version(self) -> str:
        # connection.start: version-major, version-minor, server-properties (a table).
        props = self.server[2:]
        size = struct.unpack(">I", props[:4])[0]
        data, i = props[4 : 4 + size], 0
        while i < len(data):
            n = data[i]
            key = data[i + 1 : i + 1 + n].decode()
            i += 1 + n
            tag = data[i : i + 1]
            i += 1
            if tag == b"S":
                length = struct.unpack(">I", data[i : i + 4])[0]
                value = data[i + 4 : i + 4 + length]
                i += 4 + length
                if key == "version":
                    return value.decode()
            elif tag == b"F":
                length = struct.unpack(">I", data[i : i + 4])[0]
                i += 4 + length
            elif tag == b"t":
                i += 1
            else:
                raise RuntimeError(f"server property {key} of type {tag!r}")
        return "?"

    def send(self, kind: int, channel: int, payload: bytes) -> None:
        self.sock.sendall(struct.pack(">BHI", kind, channel, len(payload)) + payload + b"\xce")

    def method(self, channel: int, cls: int, mid: int, args: bytes) -> None:
        self.send(1, channel, struct.pack(">HH", cls, mid) + args)

    def frame(self) -> tuple[int, int, bytes]:
        while True:
            if len(self.buf) >= 7:
                kind, channel, size = struct.unpack(">BHI", self.buf[:7])
                if len(self.buf) >= 8 + size:
                    payload = self.buf[7 : 7 + size]
                    self.buf = self.buf[8 + size :]
                    if kind == 8:  # heartbeat
                        continue
                    return kind, channel, payload
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("connection closed")
            self.buf += chunk

    def expect(self, channel: int, cls: int, mid: int) -> bytes:
        kind, ch, payload = self.frame()
        got = struct.unpack(">HH", payload[:4]) if kind == 1 else None
        if got != (cls, mid) or ch != channel:
            raise RuntimeError(
                f"expected {cls}.{mid} on channel {channel}, got {kind} {got}: {payload[4:80]!r}"
            )
        return payload[4:]

    def exchange(self, name: str) -> None:
        args = struct.pack(">H", 0) + shortstr(name) + shortstr("headers") + b"\x04" + table([])
        self.method(1, 40, 10, args)  # auto-delete
        self.expect(1, 40, 11)

    def queue(self, name: str) -> None:
        self.method(1, 50, 10, struct.pack(">H", 0) + shortstr(name) + b"\x04" + table([]))  # exclusive
        self.expect(1, 50, 11)

    def bind(self, queue: str, exchange: str, arguments: list[list[Any]]) -> None:
        args = struct.pack(">H", 0) + shortstr(queue) + shortstr(exchange) + shortstr("") + b"\x00"
        self.method(1, 50, 20, args + table(arguments))
        self.expect(1, 50, 21)

    def publish(self, exchange: str, headers: list[list[Any]], body: bytes) -> None:
        self.method(1, 60, 40, struct.pack(">H", 0) + shortstr(exchange) + shortstr("") + b"\x00")
        self.send(2, 1, struct.pack(">HHQH", 60, 0, len(body), 1 << 13) + table(headers))
        self.send(3, 1, body)
        self.published += 1

    def wait_confirms(self) -> None:
        settled: set[int] = set()  # acks may come out of order; a multiple ack covers every tag up to its own
        while len(settled) < self.published:
            _, _, payload = self.frame()
            cls, mid = struct.unpack(">HH", payload[:4])
            if (cls, mid) != (60, 80):
                raise RuntimeError(f"expected basic.ack, got {cls}.{mid}: {payload[4:80]!r}")
            tag, multiple = struct.unpack(">QB", payload[4:13])
            settled.update(range(1, tag + 1) if multiple & 1 else (tag,))
        self.published = 0

    def drain(self, queue: str) -> list[bytes]:
        bodies = []
        while True:
            self.method(1, 60, 70, struct.pack(">H", 0) + shortstr(queue) + b"\x01")  # no-ack
            _, _, payload = self.frame()
            cls, mid = struct.unpack(">HH", payload[:4])
            if (cls, mid) == (60, 72):
                return bodies
            if (cls, mid) != (60, 71):
                raise RuntimeError(f"expected basic.get-ok, got {cls}.{mid}: {payload[4:80]!r}")
            _, _, header = self.frame()
            size = struct.unpack(">Q", header[4:12])[0]
            body = b""
            while len(body) < size:
                body += self.frame()[2]
            bodies.append(body)

    def close(self) -> None:
        self.sock.close()


def measure(url: str) -> tuple[str, list[list[bool]]]:
    """`delivered[b][h]`: whether header value h reached the queue bound with binding value b."""
    client = Client(url)
    prefix = f"headers-types-{uuid.uuid4().hex[:8]}"
    client.exchange(prefix)
    for b, value in enumerate(VALUES):
        client.queue(f"{prefix}-{b}")
        client.bind(f"{prefix}-{b}", prefix, [["x-match", _v("longstr", "all")], ["v", value]])
    for h, value in enumerate(VALUES):
        client.publish(prefix, [["v", value]], str(h).encode())
    client.wait_confirms()
    delivered = []
    for b in range(len(VALUES)):
        arrived = {int(body) for body in client.drain(f"{prefix}-{b}")}
        delivered.append([h in arrived for h in range(len(VALUES))])
    version = client.version()
    client.close()  # exclusive queues and the auto-delete exchange go with the connection
    return version, delivered


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit(__doc__)
    results: dict[str, Any] = {}
    versions = {}
    for arg in argv:
        name, _, url = arg.partition("=")
        versions[name], results[name] = measure(url)
    cases = []
    for b, binding in enumerate(VALUES):
        for h, header in enumerate(VALUES):
            cases.append(
                {"binding": binding, "header": header, **{name: results[name][b][h] for name in results}}
            )
    OUT.write_text(
        json.dumps(
            {
                "description": (
                    "Whether a message with header v=<header> reaches a queue bound to a headers exchange "
                    "with {x-match: all, v: <binding>}, per RabbitMQ release, measured on the live broker "
                    "by tests/data/make_headers_types.py. Values are AMQP field values as typed on the "
                    "wire; decimal is [scale, digits], binary is its bytes as text, table is [[key, value]]."
                ),
                "measured_on": {name: f"RabbitMQ {v}" for name, v in versions.items()},
                "cases": cases,
            },
            indent=1,
        )
        + "\n"
    )
    for name in results:
        hits = sum(c[name] for c in cases)
        print(f"{name} (RabbitMQ {versions[name]}): {hits} of {len(cases)} pairs delivered")


if __name__ == "__main__":
    main(sys.argv[1:])
