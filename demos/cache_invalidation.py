"""cache-invalidation: a fanout exchange broadcasts `cache.invalidate` and `config.changed`
events to every running instance of a service; each instance has its own exclusive,
auto-delete queue and drops the local cache entries an event names.

Instance `api-1` is fast, `api-2` is slow (it sleeps while handling each event, and still gets
every one: its queue holds them), `api-3` joins late and gets only what was published after
its queue was bound.
"""

from __future__ import annotations

import fnmatch
import time
from typing import Any

from routing.asyncapi import Publishes
from routing.demos._common import (
    DEFAULT_PREFIX,
    DeliveryRecord,
    DemoResult,
    Table,
    claim,
    key_values,
    reset,
    script,
)
from routing.envelope import Envelope, decode, encode, to_properties
from routing.schemas import SchemaRegistry
from routing.topology import Exchange, ExchangeType, Queue, Topology
from routing.transport import Transport, open_transport

NAME = "cache-invalidation"
SLOW_SECONDS = 0.05  # what the slow instance spends on each event
EARLY = ("api-1", "api-2")
LATE = "api-3"
WARM_CACHE = {
    "user:1": "alice",
    "user:2": "bob",
    "price:eur": "1.08",
    "price:gbp": "0.86",
    "config:timeout": "30s",
    "config:retries": "3",
}
# (label, type, data); the first two go out before api-3 joins
EVENTS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("E1", "cache.invalidate", {"cache": "users", "keys": ["user:1"], "reason": "alice renamed"}),
    ("E2", "config.changed", {"service": "api", "keys": ["timeout"], "version": 7}),
    ("E3", "cache.invalidate", {"cache": "prices", "pattern": "price:*", "reason": "rates updated"}),
    ("E4", "config.changed", {"service": "api", "keys": ["retries"], "version": 8}),
)
BEFORE_LATE_JOIN = 2


def exchange(prefix: str = DEFAULT_PREFIX) -> Exchange:
    return Exchange(f"{prefix}invalidations", ExchangeType.FANOUT)


def instance_topology(prefix: str, instance: str) -> Topology:
    """What one instance declares when it starts: the exchange, its own queue, the binding."""
    ex = exchange(prefix)
    queue = Queue(f"{prefix}invalidations.{instance}", durable=False, exclusive=True, auto_delete=True)
    return Topology.of(ex, queue, ex.bind(queue))


def topology(prefix: str = DEFAULT_PREFIX) -> Topology:
    return Topology.of(*(instance_topology(prefix, i) for i in (*EARLY, LATE)))


TOPOLOGY = topology()


def publishes(prefix: str = DEFAULT_PREFIX) -> tuple[Publishes, ...]:
    """What the demo publishes where: its operations in `routing asyncapi routing.demos.cache_invalidation:TOPOLOGY`."""
    kinds = dict.fromkeys(kind for _, kind, _ in EVENTS)
    return tuple(Publishes(exchange(prefix).name, "", kind) for kind in kinds)


def affected(event_type: str, data: Any, cache: dict[str, str]) -> list[str]:
    """The local cache keys an event makes stale."""
    if event_type == "config.changed":
        names = {f"config:{k}" for k in data["keys"]}
        return [k for k in cache if k in names]
    if "keys" in data:
        return [k for k in cache if k in data["keys"]]
    return [k for k in cache if fnmatch.fnmatchcase(k, data["pattern"])]


def _show(cache: dict[str, str]) -> str:
    return ", ".join(sorted(cache)) or "(empty)"


def run(url: str | None = None, *, prefix: str = DEFAULT_PREFIX, force: bool = False) -> DemoResult:
    """Broadcast invalidations over a fanout: every instance drops what each event names."""
    registry = SchemaRegistry.bundled()
    ex = exchange(prefix).name
    caches: dict[str, dict[str, str]] = {}
    before: dict[str, str] = {}
    labels: dict[str, str] = {}
    conns: dict[str, Transport] = {}
    published = []
    deliveries: list[DeliveryRecord] = []
    claimed = False
    try:
        # An instance's exclusive queue lives as long as its connection: one transport each.
        with open_transport(url) as publisher:
            claim(publisher, Topology.of(exchange(prefix)), demo="cache-invalidation", force=force)
            claimed = True

            def join(instance: str) -> None:
                conns[instance] = open_transport(url)
                conns[instance].declare(instance_topology(prefix, instance))
                caches[instance] = dict(WARM_CACHE)
                before[instance] = _show(caches[instance])

            def publish(label: str, kind: str, data: dict[str, Any]) -> None:
                env = Envelope.new(kind, data, source="urn:demo:admin")
                labels[env.id] = label
                publisher.publish(ex, "", encode(env, registry=registry), to_properties(env))
                failed = publisher.flush(10)
                if failed:
                    failed[0].raise_for_outcome()
                published.append((label, kind, key_values(data), ", ".join(sorted(conns))))

            for instance in EARLY:
                join(instance)
            for event in EVENTS[:BEFORE_LATE_JOIN]:
                publish(*event)
            join(LATE)
            for event in EVENTS[BEFORE_LATE_JOIN:]:
                publish(*event)

            for instance in (*EARLY, LATE):
                queue = f"{prefix}invalidations.{instance}"
                consumer = conns[instance].consume(queue, prefetch=1)
                while (d := consumer.get(timeout=0.3)) is not None:
                    env = decode(d.body, d.properties, registry=registry)
                    if instance == "api-2":
                        time.sleep(SLOW_SECONDS)  # simulated slow handler
                    dropped = affected(env.type, env.data, caches[instance])
                    for key in dropped:
                        del caches[instance][key]
                    conns[instance].ack(d)
                    deliveries.append(
                        DeliveryRecord(
                            consumer=instance,
                            queue=queue,
                            message=labels[env.id],
                            why=f"fanout: every bound queue gets a copy; dropped {', '.join(dropped) or 'nothing'}",
                        )
                    )
                consumer.cancel()
    finally:
        for transport in conns.values():  # closing deletes each exclusive queue
            transport.close()
        if claimed:
            with open_transport(url) as cleanup:
                reset(cleanup, Topology.of(exchange(prefix)))

    got = {i: [d.message for d in deliveries if d.consumer == i] for i in caches}
    tables = (
        Table(
            title=f"1. publish to fanout exchange {ex!r} (instances bound at the time)",
            columns=("event", "type", "data", "bound instances"),
            rows=tuple(published),
        ),
        Table(
            title="2. deliveries",
            columns=("instance", "event", "effect"),
            rows=tuple((d.consumer, d.message, d.why.split("; ", 1)[1]) for d in deliveries),
            note=f"api-2 is slow: it sleeps {SLOW_SECONDS:.2f} s per event (simulated), its queue buffers the rest",
        ),
        Table(
            title="3. each instance's cache, before and after",
            columns=("instance", "events", "before", "after"),
            rows=tuple((i, ", ".join(got[i]), before[i], _show(caches[i])) for i in caches),
        ),
    )
    summary = (
        f"{len(EVENTS)} events, {len(deliveries)} deliveries: the early instances got all {len(EVENTS)} "
        f"(slow api-2 too), late {LATE} got only the {len(got[LATE])} published after it joined"
    )
    return DemoResult.routed(NAME, url, deliveries, tables, summary)


if __name__ == "__main__":
    script(run)
