"""cache-invalidation: a fanout exchange broadcasts `cache.invalidate` and `config.changed`
events to every running instance of a service (`routing.broadcast`); each instance's
`Listener` has its own exclusive, auto-delete queue and drops the cache entries an event names.

Instance `api-1` is fast, `api-2` is slow (it sleeps while handling each event, and still gets
every one: its queue holds them), `api-3` joins late and gets only what was published after
its queue was bound. Then `api-1`'s connection is cut by the broker: its queue goes with it,
it reconnects, reports the gap (it may have missed events) and clears its cache.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from routing.broadcast import SEQUENCE, Broadcaster, Gap, Listener, listener_topology
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
from routing.embedded.registry import broker_for
from routing.envelope import Envelope
from routing.management import Management
from routing.operations import Publishes
from routing.topology import Exchange, ExchangeType, Topology
from routing.transport import open_transport
from routing.urls import is_memory, resolve

NAME = "cache-invalidation"
SLOW_SECONDS = 0.05  # what the slow instance spends on each event
EARLY = ("api-1", "api-2")
LATE = "api-3"
CUT = "api-1"  # the instance whose connection the broker closes
MAX_LENGTH = 1000
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
    """What one instance's listener declares: the exchange, its own queue, the binding."""
    ex = exchange(prefix).name
    return listener_topology(ex, f"{ex}.{instance}", MAX_LENGTH)


def topology(prefix: str = DEFAULT_PREFIX) -> Topology:
    return Topology.of(*(instance_topology(prefix, i) for i in (*EARLY, LATE)))


TOPOLOGY = topology()


class _Cache(dict[str, str]):
    """A dict that remembers which keys were dropped from it, for the demo's tables."""

    def __init__(self, items: dict[str, str]) -> None:
        super().__init__(items)
        self.dropped: list[str] = []

    def pop(self, key: str, *default: Any) -> Any:
        if key in self:
            self.dropped.append(key)
        return super().pop(key, *default)

    def taken(self) -> list[str]:
        out, self.dropped = self.dropped, []
        return out


def publishes(prefix: str = DEFAULT_PREFIX) -> tuple[Publishes, ...]:
    """What the demo publishes where: its operations in `routing asyncapi routing.demos.cache_invalidation:TOPOLOGY`."""
    kinds = dict.fromkeys(kind for _, kind, _ in EVENTS)
    return tuple(Publishes(exchange(prefix).name, "", kind) for kind in kinds)


def _show(cache: dict[str, str]) -> str:
    return ", ".join(sorted(cache)) or "(empty)"


def cut_connection(url: str, listener: Listener, reason: str) -> None:
    """Have the broker close the listener's connection, as an operator (or a network blip)
    would: the embedded broker's `connections.close`, RabbitMQ's management API."""
    if is_memory(url):
        broker_for(url).connections.close(listener.name, reason)
        return
    management = Management.for_broker(url)
    deadline = time.monotonic() + 15  # the management API lists a new connection within seconds
    while not (names := management.connection_names(listener.name)) and time.monotonic() < deadline:
        time.sleep(0.2)
    for name in names:
        management.close_connection(name, reason)


def _until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:
        time.sleep(0.01)


def _publish(broadcaster: Broadcaster, kind: str, data: dict[str, Any]) -> None:
    if kind == "config.changed":
        broadcaster.config_changed(data["service"], data["keys"], data["version"])
    else:
        broadcaster.invalidate(
            data["cache"], data.get("keys"), pattern=data.get("pattern"), reason=data["reason"]
        )


def run(url: str | None = None, *, prefix: str = DEFAULT_PREFIX, force: bool = False) -> DemoResult:
    """Broadcast invalidations over a fanout: every instance drops what each event names."""
    url = resolve(url)
    ex = exchange(prefix).name
    caches: dict[str, _Cache] = {}
    before: dict[str, str] = {}
    listeners: dict[str, Listener] = {}
    published = []
    deliveries: list[DeliveryRecord] = []
    gaps: list[tuple[str, Gap]] = []
    lock = threading.Lock()
    claimed = False

    def join(instance: str) -> None:
        cache = caches[instance] = _Cache(WARM_CACHE)
        before[instance] = _show(cache)
        listener = listeners[instance] = Listener(url, exchange=ex, service="api", name=instance)
        listener.attach(cache)  # each event drops what it names; a gap clears it all

        def handle(env: Envelope) -> None:
            if instance == "api-2":
                time.sleep(SLOW_SECONDS)  # simulated slow handler
            dropped = ", ".join(cache.taken()) or "nothing"
            label = EVENTS[int(env.extensions[SEQUENCE]) - 1][0]
            record = DeliveryRecord(
                consumer=instance,
                queue=listener.queue,
                message=label,
                why=f"fanout: every bound queue gets a copy; dropped {dropped}",
            )
            with lock:
                deliveries.append(record)

        listener.on_invalidate(handle)
        listener.on_config(handle)
        listener.on_gap(lambda gap: gaps.append((instance, gap)))
        listener.start()

    try:
        with open_transport(url) as publisher:
            claim(publisher, Topology.of(exchange(prefix)), demo="cache-invalidation", force=force)
            claimed = True
            broadcaster = Broadcaster(publisher, exchange=ex, source="urn:demo:admin")
            for instance in EARLY:
                join(instance)
            for n, (label, kind, data) in enumerate(EVENTS):
                if n == BEFORE_LATE_JOIN:
                    join(LATE)
                _publish(broadcaster, kind, data)
                published.append((label, kind, key_values(data), ", ".join(sorted(listeners))))
            expected = {i: len(EVENTS) for i in EARLY} | {LATE: len(EVENTS) - BEFORE_LATE_JOIN}
            _until(lambda: all(listeners[i].stats.applied == n for i, n in expected.items()))
            after_events = {i: _show(c) for i, c in caches.items()}
            cut_connection(url, listeners[CUT], "demo: the broker closes api-1's connection")
            _until(lambda: bool(gaps))
    finally:
        for listener in listeners.values():  # closing deletes each exclusive queue
            listener.stop()
        if claimed:
            with open_transport(url) as cleanup:
                reset(cleanup, Topology.of(exchange(prefix)))

    order = [*EARLY, LATE]
    deliveries.sort(key=lambda d: (order.index(d.consumer), d.message))  # threads finish in any order
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
            title="3. each instance's cache, before and after the events",
            columns=("instance", "events", "before", "after"),
            rows=tuple((i, ", ".join(got[i]), before[i], after_events[i]) for i in caches),
        ),
        Table(
            title=f"4. the broker closes {CUT}'s connection: its queue is gone, events meanwhile are lost",
            columns=("instance", "gap", "detail", "cache now"),
            rows=tuple((i, str(g.cause), g.detail, _show(caches[i])) for i, g in gaps),
            note="a gap clears the attached cache: entries are fetched again, none stays stale",
        ),
    )
    summary = (
        f"{len(EVENTS)} events, {len(deliveries)} deliveries: the early instances got all {len(EVENTS)} "
        f"(slow api-2 too), late {LATE} got only the {len(got[LATE])} published after it joined; "
        f"{CUT} lost its connection, reported {len(gaps)} gap(s) and cleared its cache"
    )
    result = DemoResult.routed(NAME, url, deliveries, tables, summary)
    facts = (*result.facts, *(f"{i} gap {g.cause}" for i, g in gaps))
    return DemoResult(
        name=result.name,
        broker=result.broker,
        deliveries=result.deliveries,
        tables=result.tables,
        summary=result.summary,
        facts=tuple(sorted(facts)),
    )


if __name__ == "__main__":
    script(run)
