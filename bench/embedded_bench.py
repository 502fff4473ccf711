"""The embedded broker's throughput: messages published, routed, delivered and acked in one
process, through `open_transport("memory://...")` (no validation: the bytes are pre-built).

Each round publishes in batches of `BATCH`, then takes every delivery from a consumer and
acks it, so the queue stays short, as in a steady pipeline. Two routes: the default exchange
straight to the queue, and a topic exchange with 10 bindings of which one matches.
Run: `python -m bench.embedded_bench [--quick] [--json]`.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from typing import Any

import routing
from bench.message import body_and_properties
from bench.stats import rate, summary, table
from routing import Exchange, Queue, Topology

BATCH = 500
KEY = "log.billing.error"


def _topology(exchange: str, queue: str) -> Topology:
    """A topic exchange with 10 bindings; only `log.*.error` matches `KEY`."""
    ex = Exchange(exchange, "topic", durable=False)
    target = Queue(queue, durable=False, auto_delete=False)
    others = [Queue(f"{queue}.other{i}", durable=False) for i in range(9)]
    keys = [f"log.billing.{lvl}" for lvl in ("debug", "info", "warning", "critical")]
    keys += ["audit.#", "metrics.*.*", "log.shop.*", "*.billing.debug", "trace.#"]
    bindings = [ex.bind(target, "log.*.error")] + [ex.bind(q, k) for q, k in zip(others, keys, strict=True)]
    return Topology.of(ex, [target, *others], bindings)


def measure(n: int, *, rounds: int, topic: bool) -> dict[str, Any]:
    body, props = body_and_properties()
    name = f"bench-{uuid.uuid4().hex[:8]}"
    rates = []
    with routing.open_transport(f"memory://{name}") as transport:
        topology = _topology("bench.topic", "bench.q")
        transport.declare(topology)
        exchange, key = ("bench.topic", KEY) if topic else ("", "bench.q")
        consumer = transport.consume("bench.q", prefetch=BATCH)
        publish, ack, get = transport.publish, transport.ack, consumer.get
        for _ in range(rounds + 1):  # the first is a warm-up
            start = time.perf_counter()
            done = 0
            while done < n:
                batch = min(BATCH, n - done)
                for _ in range(batch):
                    publish(exchange, key, body, props)
                for _ in range(batch):
                    delivery = get(1.0)
                    if delivery is None:
                        raise RuntimeError("embedded broker: a published message was not delivered")
                    ack(delivery)
                done += batch
            rates.append(n / (time.perf_counter() - start))
            if transport.flush():
                raise RuntimeError("embedded broker: a publication was not confirmed")
        consumer.cancel()
    return {"route": "topic, 10 bindings" if topic else "default exchange", "n": n, **summary(rates[1:])}


def run(quick: bool = False) -> list[dict[str, Any]]:
    n, rounds = (5_000, 2) if quick else (50_000, 5)
    return [measure(n, rounds=rounds, topic=False), measure(n, rounds=rounds, topic=True)]


def report(rows: list[dict[str, Any]]) -> str:
    return table(
        ["route", "msg/s median", "min-max", "N/round"],
        [[r["route"], rate(r["median"]), f"{rate(r['min'])}-{rate(r['max'])}", f"{r['n']:,}"] for r in rows],
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.embedded_bench", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = run(args.quick)
    print(json.dumps(rows, indent=2) if args.json else report(rows))


if __name__ == "__main__":
    main()
