"""Publish-to-consume latency through RabbitMQ at a steady rate (1,000 msg/s by default).

The toolkit's `Publisher.emit` sends each envelope with the monotonic clock in its data
(`fields.sent_ns`) on a fixed schedule; a consumer on another connection, in another
thread, decodes and validates each one (`routing.decode`), reads the clock and acks. The
latency includes the publisher's validation, the broker's persistence to a durable queue,
and the consumer's decode. Run: `python -m bench.latency_bench [--quick] [--url URL]`.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid
from typing import Any

import routing
from bench import peers, toolkit
from bench.broker_bench import DEFAULT_URL
from bench.message import DATA, EVENT_TYPE, EXTENSIONS, SOURCE, SUBJECT
from bench.stats import percentile, table
from routing import Publisher

WARMUP = 100  # the first messages (connection and caches warming up) are not counted


def _consume(url: str, queue: str, total: int, ready: threading.Event, out: list[float]) -> None:
    registry = toolkit.registry()
    with routing.open_transport(url) as transport:
        consumer = transport.consume(queue, prefetch=100)
        ready.set()
        seen = 0
        while seen < total:
            delivery = consumer.get(timeout=5.0)
            if delivery is None:
                break  # the publisher stopped early; the caller reports the shortfall
            event = routing.decode(delivery.body, delivery.properties, registry=registry)
            out.append((time.monotonic_ns() - event.data["fields"]["sent_ns"]) / 1e6)
            transport.ack(delivery)
            seen += 1
        consumer.cancel()


def measure(url: str, *, rate: int, seconds: float) -> dict[str, Any]:
    total = int(rate * seconds)
    queue = f"bench.latency.{uuid.uuid4().hex[:8]}"
    peers.declare_queue(url, queue)
    latencies: list[float] = []
    try:
        ready = threading.Event()
        thread = threading.Thread(target=_consume, args=(url, queue, total, ready, latencies), daemon=True)
        thread.start()
        if not ready.wait(10):
            raise RuntimeError("latency: the consumer did not start")
        fields = dict(DATA["fields"])
        data = dict(DATA, fields=fields)
        with routing.open_transport(url) as transport:
            publisher = Publisher(transport, registry=toolkit.registry(), source=SOURCE)
            interval = 1 / rate
            start = time.perf_counter()
            for i in range(total):
                pause = start + i * interval - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                fields["sent_ns"] = time.monotonic_ns()
                publisher.emit("", queue, EVENT_TYPE, data, subject=SUBJECT, extensions=EXTENSIONS)
            achieved = total / (time.perf_counter() - start)
            failed = publisher.flush()
        thread.join(30)
    finally:
        peers.delete_queue(url, queue)
    if failed or len(latencies) != total:
        raise RuntimeError(f"latency: {len(failed)} unconfirmed, {len(latencies)} of {total} consumed")
    counted = latencies[WARMUP:] if len(latencies) > 2 * WARMUP else latencies
    return {
        "target_rate": rate,
        "achieved_rate": achieved,
        "messages": total,
        "p50_ms": percentile(counted, 50),
        "p90_ms": percentile(counted, 90),
        "p99_ms": percentile(counted, 99),
        "max_ms": max(counted),
    }


def run(quick: bool = False, url: str = DEFAULT_URL) -> dict[str, Any]:
    return measure(url, rate=1000, seconds=2 if quick else 10)


def report(r: dict[str, Any]) -> str:
    return table(
        ["target msg/s", "achieved", "messages", "p50 ms", "p90 ms", "p99 ms", "max ms"],
        [
            [
                f"{r['target_rate']:,}",
                f"{r['achieved_rate']:,.0f}",
                f"{r['messages']:,}",
                f"{r['p50_ms']:.2f}",
                f"{r['p90_ms']:.2f}",
                f"{r['p99_ms']:.2f}",
                f"{r['max_ms']:.1f}",
            ]
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.latency_bench", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--url", default=DEFAULT_URL)
    args = parser.parse_args()
    result = run(args.quick, args.url)
    print(json.dumps(result, indent=2) if args.json else report(result))


if __name__ == "__main__":
    main()
