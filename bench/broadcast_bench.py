"""Cache-invalidation propagation: from `Broadcaster.invalidate()` to the last of 10
listening instances applying it, at a steady 500 events/s through RabbitMQ.

Each instance is a process of its own with a `routing.broadcast.Listener` (its thread
decodes and validates each event, drops the key from an attached dict, acks) and notes the
monotonic clock (system-wide on Linux) when its handler runs. The publisher notes the clock
just before each `invalidate()`. Per event: the latency to the last instance (and to the
first, for the spread). Run: `python -m bench.broadcast_bench [--quick] [--url URL]`.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
import uuid
from multiprocessing.connection import Connection
from typing import Any

from bench.broker_bench import DEFAULT_URL
from bench.stats import percentile, table
from routing.broadcast import SEQUENCE, Broadcaster, Listener
from routing.envelope import Envelope
from routing.transport import open_transport

INSTANCES = 10
RATE = 500
WARMUP = 100  # the first events (connections and caches warming up) are not counted


def _instance(url: str, exchange: str, name: str, total: int, pipe: Connection) -> None:
    applied: dict[int, int] = {}
    cache: dict[str, int] = {}
    listener = Listener(url, exchange=exchange, service="bench", name=name)
    listener.attach(cache, name="kv")

    @listener.on_invalidate
    def note(env: Envelope) -> None:
        applied[int(env.extensions[SEQUENCE])] = time.monotonic_ns()

    with listener:
        pipe.send("ready")
        deadline = time.monotonic() + total / RATE + 60
        while len(applied) < total and time.monotonic() < deadline:
            time.sleep(0.05)
        gaps = listener.stats.gaps
    pipe.send((applied, gaps))


def measure(url: str, *, rate: int, seconds: float, instances: int = INSTANCES) -> dict[str, Any]:
    total = int(rate * seconds)
    exchange = f"bench.broadcast.{uuid.uuid4().hex[:8]}"
    spawn = multiprocessing.get_context("spawn")
    pipes, procs = [], []
    for i in range(instances):
        ours, theirs = spawn.Pipe()
        proc = spawn.Process(target=_instance, args=(url, exchange, f"bench-{i}", total, theirs), daemon=True)
        proc.start()
        pipes.append(ours)
        procs.append(proc)
    try:
        for pipe in pipes:
            if not pipe.poll(60) or pipe.recv() != "ready":
                raise RuntimeError("broadcast: an instance did not start")
        sent: dict[int, int] = {}
        with open_transport(url) as transport:
            broadcaster = Broadcaster(transport, exchange=exchange, source="urn:bench")
            interval = 1 / rate
            start = time.perf_counter()
            for i in range(total):
                pause = start + i * interval - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                sent[i + 1] = time.monotonic_ns()
                broadcaster.invalidate("kv", f"k{i % 1000}", reason="bench", wait=False)
                if i % 50 == 49:
                    broadcaster.flush(30)
            achieved = total / (time.perf_counter() - start)
            failed = broadcaster.flush(30)
            transport.delete_exchange(exchange)
        results = [pipe.recv() if pipe.poll(total / rate + 90) else ({}, -1) for pipe in pipes]
    finally:
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
    missing = sum(total - len(applied) for applied, _ in results)
    gaps = sum(g for _, g in results)
    if failed or missing or gaps:
        raise RuntimeError(f"broadcast: {len(failed)} unconfirmed, {missing} not applied, {gaps} gap(s)")
    last = [(max(a[n] for a, _ in results) - sent[n]) / 1e6 for n in range(WARMUP + 1, total + 1)]
    first = [(min(a[n] for a, _ in results) - sent[n]) / 1e6 for n in range(WARMUP + 1, total + 1)]
    return {
        "instances": instances,
        "target_rate": rate,
        "achieved_rate": achieved,
        "events": total,
        "p50_ms": percentile(last, 50),
        "p90_ms": percentile(last, 90),
        "p99_ms": percentile(last, 99),
        "max_ms": max(last),
        "first_p50_ms": percentile(first, 50),
    }


def run(quick: bool = False, url: str = DEFAULT_URL) -> dict[str, Any]:
    return measure(url, rate=RATE, seconds=3 if quick else 20)


def report(r: dict[str, Any]) -> str:
    return table(
        [
            "instances",
            "events/s",
            "achieved",
            "events",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms",
            "first p50 ms",
        ],
        [
            [
                f"{r['instances']}",
                f"{r['target_rate']:,}",
                f"{r['achieved_rate']:,.0f}",
                f"{r['events']:,}",
                f"{r['p50_ms']:.2f}",
                f"{r['p90_ms']:.2f}",
                f"{r['p99_ms']:.2f}",
                f"{r['max_ms']:.1f}",
                f"{r['first_p50_ms']:.2f}",
            ]
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.broadcast_bench", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--url", default=DEFAULT_URL)
    args = parser.parse_args()
    result = run(args.quick, args.url)
    print(json.dumps(result, indent=2) if args.json else report(result))


if __name__ == "__main__":
    main()
