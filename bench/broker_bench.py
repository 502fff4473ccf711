"""Publish and consume against RabbitMQ: the toolkit and its peers, side by side, in one run.

Every contender sends the same persistent ~540-byte envelope to a fresh durable queue
through the default exchange, with publisher confirms. Rounds alternate the contenders
(the order rotates each round), each on its own queue, deleted after; a warm-up round
sizes each contender's N so that a round lasts about the same time for all. Reported:
median and min-max msg/s over the rounds. Run: `python -m bench.broker_bench [--quick]`.
"""

from __future__ import annotations

import argparse
import functools
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench import aio_toolkit, peers, raw_socket, toolkit
from bench.message import body_and_properties
from bench.stats import Timed, rate, summary, table

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


@dataclass(frozen=True)
class Contender:
    key: str
    label: str
    run: Callable[[str, str, int], Timed]  # (url, queue, n) -> the timed part's wall and CPU seconds
    needs: str | None = None  # the optional peer library it needs

    def missing(self, installed: dict[str, str | None]) -> bool:
        return self.needs is not None and installed.get(self.needs) is None


@dataclass(frozen=True)
class Plan:
    rounds: int
    target_s: float  # how long one contender's round should take
    warm_n: int
    min_n: int
    max_n: int


FULL_PUBLISH = Plan(rounds=5, target_s=1.5, warm_n=400, min_n=500, max_n=40_000)
FULL_CONSUME = Plan(rounds=5, target_s=1.0, warm_n=1000, min_n=1000, max_n=40_000)
QUICK = Plan(rounds=2, target_s=0.2, warm_n=100, min_n=100, max_n=2000)


def publishers() -> list[Contender]:
    body, props = body_and_properties()

    def prebuilt(fn: Callable[..., Timed]) -> Callable[[str, str, int], Timed]:
        return lambda url, queue, n: fn(url, queue, body, props, n)

    return [
        Contender("toolkit", "toolkit Publisher.emit + flush (builds, validates)", prebuilt(toolkit.publish)),
        Contender(
            "toolkit_batch",
            "toolkit Publisher.emit + flush in publisher.batch()",
            prebuilt(functools.partial(toolkit.publish, batch=True)),
        ),
        Contender(
            "toolkit_otel",
            "  the same, routing.otel.instrument() with no tracer provider (the otel extra)",
            prebuilt(toolkit.publish_instrumented),
            "opentelemetry-api",
        ),
        Contender(
            "toolkit_aio",
            "toolkit routing.aio Publisher.emit + flush (builds, validates)",
            prebuilt(aio_toolkit.publish),
        ),
        Contender("pika_pipelined", "pika SelectConnection, window 1000", prebuilt(peers.pika_pipelined)),
        Contender(
            "aio_pika", "aio-pika confirms, tasks, window 1000", prebuilt(peers.aio_pika_confirms), "aio-pika"
        ),
        Contender("kombu", "kombu confirm_publish", prebuilt(peers.kombu_confirms), "kombu"),
        Contender("pika_blocking", "pika BlockingConnection confirm_delivery", prebuilt(peers.pika_blocking)),
        Contender(
            "raw_socket",
            "broker limit: raw socket, pre-built frames, window 1000",
            prebuilt(raw_socket.publish),
        ),
    ]


def consumers() -> list[Contender]:
    tk, pk = toolkit.consume, peers.pika_consume
    p = functools.partial
    return [
        Contender("toolkit_p100", "toolkit decode+validate, ack each, prefetch 100", p(tk, prefetch=100)),
        Contender("pika_p100", "pika ack each, prefetch 100", p(pk, prefetch=100)),
        Contender(
            "toolkit_aio_p100",
            "toolkit aio async for, decode+validate, ack each, prefetch 100",
            p(aio_toolkit.consume, prefetch=100),
        ),
        Contender(
            "aio_pika_p100",
            "aio-pika queue.iterator(), ack each, prefetch 100",
            p(peers.aio_pika_consume, prefetch=100),
            "aio-pika",
        ),
        Contender(
            "toolkit_p1000_batch",
            "toolkit decode+validate, multiple-ack/100, prefetch 1000",
            p(tk, prefetch=1000, ack_every=100),
        ),
        Contender("pika_p1000", "pika ack each, prefetch 1000", p(pk, prefetch=1000)),
        Contender(
            "pika_p1000_batch", "pika multiple-ack/100, prefetch 1000", p(pk, prefetch=1000, ack_every=100)
        ),
    ]


def _wait_count(admin: peers.Admin, queue: str, expected: int, timeout: float = 2.0) -> int:
    """The queue's message count once it equals `expected` (or whatever it is at `timeout`)."""
    deadline = time.monotonic() + timeout
    while True:
        count = admin.count(queue)
        if count == expected or time.monotonic() > deadline:
            return count
        time.sleep(0.02)


def _one(admin: peers.Admin, url: str, c: Contender, n: int, consume: bool) -> tuple[float, float]:
    """One round of one contender on a fresh durable queue: msg/s, and the client's CPU
    microseconds per message. Checks the broker agrees: every confirmed message is in the
    queue, every consumed one acked."""
    queue = f"bench.{c.key}.{uuid.uuid4().hex[:8]}"
    admin.declare(queue)
    try:
        if consume:
            body, props = body_and_properties()
            peers.fill(url, queue, body, props, n)
        timed = c.run(url, queue, n)
        expected = 0 if consume else n
        left = _wait_count(admin, queue, expected)
        if left != expected:
            raise RuntimeError(f"{c.label}: the queue holds {left} messages after the round, not {expected}")
        return n / timed.seconds, timed.cpu / n * 1e6
    finally:
        admin.delete(queue)


def run_contenders(
    url: str, contenders: list[Contender], plan: Plan, *, consume: bool
) -> list[dict[str, Any]]:
    installed = peers.versions()
    active = [c for c in contenders if not c.missing(installed)]
    admin = peers.Admin(url)
    try:
        sizes = {}
        for c in active:  # warm-up, and N for a round of about `plan.target_s`
            warm, _ = _one(admin, url, c, plan.warm_n, consume)
            sizes[c.key] = max(plan.min_n, min(plan.max_n, int(warm * plan.target_s) // 100 * 100))
        rates: dict[str, list[float]] = {c.key: [] for c in active}
        cpu: dict[str, list[float]] = {c.key: [] for c in active}
        for r in range(plan.rounds):
            shift = r % len(active)
            for c in active[shift:] + active[:shift]:
                rate_, cpu_us = _one(admin, url, c, sizes[c.key], consume)
                rates[c.key].append(rate_)
                cpu[c.key].append(cpu_us)
    finally:
        admin.close()
    rows = []
    for c in contenders:
        row: dict[str, Any] = {"key": c.key, "label": c.label}
        if c.missing(installed):
            row["status"] = "not installed"
        else:
            row.update(status="ok", n=sizes[c.key], **summary(rates[c.key]))
            row["cpu_us"] = summary(cpu[c.key])  # client CPU per message, over the timed window
        rows.append(row)
    return rows


def run(
    quick: bool = False, url: str = DEFAULT_URL, only: str | None = None
) -> dict[str, list[dict[str, Any]]]:
    """`only`: "publish" or "consume"; both by default."""
    results = {}
    if only in (None, "publish"):
        results["publish"] = run_contenders(
            url, publishers(), QUICK if quick else FULL_PUBLISH, consume=False
        )
    if only in (None, "consume"):
        results["consume"] = run_contenders(url, consumers(), QUICK if quick else FULL_CONSUME, consume=True)
    return results


def report(rows: list[dict[str, Any]]) -> str:
    base = next((r["median"] for r in rows if r["status"] == "ok"), None)
    lines = []
    for r in rows:
        if r["status"] != "ok":
            lines.append([r["label"], r["status"], "", "", "", ""])
            continue
        lines.append(
            [
                r["label"],
                rate(r["median"]),
                f"{rate(r['min'])}-{rate(r['max'])}",
                f"{r['n']:,}",
                f"{base / r['median']:.2f}x" if base else "-",
                f"{r['cpu_us']['median']:.1f}",
            ]
        )
    return table(
        ["contender", "msg/s median", "min-max", "N/round", "row 1 / this", "client CPU us/msg"], lines
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.broker_bench", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--only", choices=["publish", "consume"])
    parser.add_argument("--url", default=DEFAULT_URL)
    args = parser.parse_args()
    results = run(args.quick, args.url, args.only)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for name, rows in results.items():
        print(f"\n{name}\n{report(rows)}")


if __name__ == "__main__":
    main()
