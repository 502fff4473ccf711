"""The toolkit as a contender, through its public API only: `Publisher.emit` + `flush` to
publish, `transport.consume` + `routing.decode` + `transport.ack` to consume.

Same shape as the peers in `bench.peers`: connecting is not timed; each function returns
its timed part's wall-clock and CPU
seconds (a `bench.stats.Timed`).
"""

from __future__ import annotations

import contextlib

import routing
from bench.message import DATA, EVENT_TYPE, EXTENSIONS, SOURCE, SUBJECT
from bench.stats import Stopwatch, Timed
from routing import Properties, Publisher, SchemaRegistry

_registry: SchemaRegistry | None = None


def registry() -> SchemaRegistry:
    """The bundled schemas, loaded once for the whole run (as an application would)."""
    global _registry
    if _registry is None:
        _registry = SchemaRegistry.bundled()
    return _registry


def publish(url: str, queue: str, _body: bytes, _props: Properties, n: int, *, batch: bool = False) -> Timed:
    """`n` x `Publisher.emit` (build, validate, encode, publish), then `flush`: all confirmed.
    The pre-built body is not used: the toolkit builds every envelope itself. `batch`: inside
    `publisher.batch()` (many messages to a socket write)."""
    with routing.open_transport(url) as transport:
        publisher = Publisher(transport, registry=registry(), source=SOURCE)
        emit = publisher.emit
        # The channel opens (and enters confirm mode) on the first publish; the peers open
        # theirs before their clocks start, so this one is sent, confirmed and purged first.
        emit("", queue, EVENT_TYPE, DATA, subject=SUBJECT, extensions=EXTENSIONS)
        publisher.flush()
        transport.purge(queue)
        watch = Stopwatch()
        with publisher.batch() if batch else contextlib.nullcontext():
            for _ in range(n):
                emit("", queue, EVENT_TYPE, DATA, subject=SUBJECT, extensions=EXTENSIONS)
            failed = publisher.flush()
        elapsed = watch.stop()
    if failed:
        raise RuntimeError(f"toolkit publish: {len(failed)} of {n} not confirmed: {failed[0]!r}")
    return elapsed


def publish_instrumented(url: str, queue: str, body: bytes, props: Properties, n: int) -> Timed:
    """`publish` under `routing.otel.instrument()` with no tracer or meter provider configured:
    what the `otel` extra costs a service that installs it and exports nothing (the API's no-op
    spans and instruments)."""
    import routing.otel

    routing.otel.instrument()
    try:
        return publish(url, queue, body, props, n)
    finally:
        routing.otel.uninstrument()


def consume(url: str, queue: str, n: int, *, prefetch: int, ack_every: int = 1) -> Timed:
    """Consume `n`, decode and validate each (`routing.decode` with the registry), ack each;
    with `ack_every` > 1, one `ack(multiple=True)` per that many deliveries."""
    reg = registry()
    with routing.open_transport(url) as transport:
        consumer = transport.consume(queue, prefetch=prefetch)
        ack, decode = transport.ack, routing.decode
        watch = Stopwatch()
        for seen, delivery in enumerate(consumer, 1):
            decode(delivery.body, delivery.properties, registry=reg)
            if ack_every == 1:
                ack(delivery)
            elif seen % ack_every == 0 or seen == n:
                ack(delivery, multiple=True)
            if seen == n:
                break
        elapsed = watch.stop()
        consumer.cancel()
    return elapsed
