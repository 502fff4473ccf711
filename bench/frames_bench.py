"""What reading a delivery off the wire costs: our frame decoder against pika's, in CPU
microseconds per delivery, on the same bytes (no broker).

The stream is what RabbitMQ sends a consumer of the bench's one message (`bench.message`):
`basic.deliver`, content header (the envelope's properties) and one body frame, per
message. "pika" is pika's own path for those bytes: `frame.decode_frame` per frame (pika's
`BasicProperties` for the header) and its `ContentFrameAssembler`; "routing" is
`_frames.Frames.feed`, which hands out the delivery with our `Properties`. Both read the
stream in 4 KB pieces (pika's socket read) and in 64 KB pieces (ours). CPU time, best of
`rounds`: the machine may be busy. Run: `python -m bench.frames_bench [--n N] [--quick] [--json]`.
"""

from __future__ import annotations

import argparse
import json
import struct
import time
from collections.abc import Callable
from typing import Any

from pika import frame
from pika.channel import ContentFrameAssembler

from bench.message import body_and_properties
from routing.properties import encode_properties
from routing.transport.rabbitmq._frames import Frames

DEFAULT_N = 20_000


def stream(n: int, channel: int = 1) -> bytes:
    """`n` deliveries of the bench's message as RabbitMQ frames them."""
    body, props = body_and_properties()
    properties = encode_properties(props)
    out = []
    for tag in range(1, n + 1):
        method = (
            struct.pack(">HHB", 60, 60, 31)
            + b"ctag1.0123456789abcdef0123456789"
            + struct.pack(">QB", tag, 0)
            + b"\x00"  # the default exchange
            + bytes([len("bench.q")])
            + b"bench.q"
        )
        header = struct.pack(">HHQ", 60, 0, len(body)) + properties
        for kind, payload in ((1, method), (2, header), (3, body)):
            out.append(struct.pack(">BHI", kind, channel, len(payload)) + payload + b"\xce")
    return b"".join(out)


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def pika_reader(chunks: list[bytes]) -> int:
    """pika's `Connection._on_data_available` loop and its channel's content assembler."""
    buffer, assembler, delivered = b"", ContentFrameAssembler(), 0
    for chunk in chunks:
        buffer += chunk
        while buffer:
            consumed, value = frame.decode_frame(buffer)
            if not value:
                break
            buffer = buffer[consumed:]
            if assembler.process(value):
                delivered += 1
    return delivered


def routing_reader(chunks: list[bytes]) -> int:
    frames, delivered = Frames(131072), 0
    for chunk in chunks:
        delivered += len(frames.feed(chunk))
    return delivered


def _best_us(read: Callable[[list[bytes]], int], chunks: list[bytes], n: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        got = read(chunks)
        best = min(best, time.process_time() - start)
        if got != n:
            raise RuntimeError(f"{read.__name__} read {got} deliveries, not {n}")
    return best * 1e6 / n


def run(n: int = DEFAULT_N, rounds: int = 5) -> list[dict[str, Any]]:
    data = stream(n)
    rows = []
    for size in (4096, 64 * 1024):
        chunks = pieces(data, size)
        pika_us = _best_us(pika_reader, chunks, n, rounds)
        ours_us = _best_us(routing_reader, chunks, n, rounds)
        rows.append({"read": size, "pika_us": pika_us, "routing_us": ours_us, "speedup": pika_us / ours_us})
    return rows


def report(rows: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"  reads of {r['read']:>7,} bytes: pika {r['pika_us']:6.2f}  routing {r['routing_us']:6.2f}"
        f"  ({r['speedup']:.1f}x)"
        for r in rows
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.frames_bench", description=__doc__)
    parser.add_argument("--n", type=int, default=DEFAULT_N)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = run(1000 if args.quick else args.n, 2 if args.quick else 5)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print("reading deliveries off the wire, CPU us per delivery (best of the rounds)")
    print(report(rows))


if __name__ == "__main__":
    main()
