"""Watching messages without a worker: `tail` an exchange on a temporary queue of one's
own, or `read` the envelopes on a queue.

    spec = Tail(exchange="logs", routing_key="*.error")
    with open_transport(url) as transport, open_tail(transport, spec, url=url) as tap:
        for delivery, envelope in tap.read(limit=10, timeout=5):
            ...

A tail binds a temporary exclusive, auto-delete queue to the exchange (with the binding key
for a topic or direct exchange, header rules for a headers exchange, nothing for fanout),
so the exchange copies each message to it too: nothing is taken from anyone. The exchange is
declared exactly as the broker has it (read from the management API), so declaring it
changes nothing; when nobody can tell, its type is guessed from the rule, and an exchange
the guess created is deleted again: a tail never leaves an exchange behind.

`read_queue` decodes what a queue holds, acks what is accepted and never destroys what is
not: that goes to the queue's dead-letter exchange when it has one that routes somewhere
(as the management API tells), and otherwise stays on the queue.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from routing._frozen import EMPTY, FrozenDict
from routing.definitions import load_definitions
from routing.envelope import Envelope, Rejection, decode_or_reject
from routing.errors import ConnectionFailed, RoutingError, TopologyError, UnknownExchange
from routing.management import Management
from routing.schemas import SchemaRegistry
from routing.topology import Binding, Exchange, ExchangeType, Queue, Topology
from routing.transport.base import Consumer, Delivery, Transport

__all__ = [
    "Read",
    "ReadOutcome",
    "Tail",
    "Tap",
    "broker_exchanges",
    "dead_letter_exchange",
    "decoded",
    "open_tail",
    "read_queue",
]


class _Source(Protocol):
    def get(self, timeout: float | None = None) -> Delivery | None: ...
    def cancel(self) -> None: ...


def decoded(
    source: _Source,
    registry: SchemaRegistry | None = None,
    *,
    event_type: str | None = None,
    limit: int | None = None,
    timeout: float | None = None,
) -> Iterator[tuple[Delivery, Envelope | Rejection]]:
    """Each delivery from `source` (a consumer) with its envelope, or the `Rejection` that
    says why it is not one, until `limit` of them or `timeout` seconds with none; then the
    consumer is cancelled. `registry`: the bundled schemas by default."""
    registry = registry if registry is not None else SchemaRegistry.bundled()
    count = 0
    try:
        while limit is None or count < limit:
            item = source.get(timeout=timeout)
            if item is None:
                return
            count += 1
            yield item, decode_or_reject(item.body, item.properties, registry=registry, event_type=event_type)
    finally:
        source.cancel()


_BUILT_IN = {"amq.topic": "topic", "amq.fanout": "fanout", "amq.direct": "direct"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Tail:
    """What to watch: `exchange`, through `routing_key` (a binding key: topic pattern, by
    default `#`, or direct key), or `headers` with `match` "all" or "any" (a headers
    exchange), or neither (fanout). `exchange_type` when the management API cannot tell."""

    exchange: str
    routing_key: str | None = None
    headers: Mapping[str, Any] = field(default=EMPTY)
    match: str = "all"
    exchange_type: ExchangeType | None = None

    def __post_init__(self) -> None:
        if self.exchange == "":
            raise TopologyError("the default exchange cannot be bound; consume from the queue instead")
        if self.routing_key is not None and self.headers:
            raise TopologyError("give a routing key or headers to watch with, not both")
        if self.match not in ("all", "any"):
            raise TopologyError(f"match {self.match!r}: choose 'all' or 'any'")
        object.__setattr__(self, "headers", FrozenDict(self.headers))

    def guessed_type(self) -> ExchangeType:
        """The exchange's type as the rule suggests, when nobody can tell it."""
        if self.exchange_type is not None:
            return self.exchange_type
        if self.headers:
            return ExchangeType.HEADERS
        return ExchangeType.TOPIC if self.routing_key is not None else ExchangeType.FANOUT

    def binding(self, exchange: Exchange | None, queue: str) -> Binding:
        """The binding from the exchange (None: a built-in `amq.*` one) to `queue`."""
        name = self.exchange
        kind = str(exchange.type) if exchange is not None else _BUILT_IN.get(name, "headers")
        key = self.routing_key
        if self.headers or kind == "headers":
            if kind != "headers":
                raise TopologyError(
                    f"{name!r} is a {kind} exchange: --header needs a headers exchange; use --routing-key"
                )
            return Binding(name, queue, arguments={"x-match": self.match, **self.headers})
        if kind == "direct" and key is None:
            raise TopologyError(
                f"{name!r} is a direct exchange: give the routing key to watch with --routing-key"
            )
        if kind == "topic" and key is None:
            key = "#"  # everything
        return Binding(name, queue, key or "")


def broker_exchanges(tail: Tail, url: str | None) -> list[Exchange]:
    """The exchange to bind to, exactly as the broker at `url` has it (so declaring it changes
    nothing), then the alternate exchanges it names, as the broker has them too (a topology
    holds the exchanges it refers to); nothing for `amq.*`, which every vhost has. When the
    management API cannot tell (none at `url`, or none reachable), a guess of the type."""
    name = tail.exchange
    if name.startswith("amq."):
        return []
    try:
        if url is None:
            raise ConnectionFailed("no broker URL to find the management API from")
        management = Management.for_broker(url)  # refuses a URL that names no RabbitMQ
        item = management.exchange(name)
    except RoutingError:
        return [Exchange(name, tail.guessed_type())]  # checked by the declare that follows
    if item is None:
        raise _missing(name)
    found = [item]
    while (ae := (found[-1].get("arguments") or {}).get("alternate-exchange")) is not None:
        if not isinstance(ae, str) or ae.startswith("amq.") or any(f["name"] == ae for f in found):
            break
        next_item = management.exchange(ae)
        if next_item is None:
            raise UnknownExchange(
                ae,
                f"exchange {found[-1]['name']!r} names alternate exchange {ae!r}, which the broker"
                " does not have; tail would have to create it",
            )
        found.append(next_item)
    keys = ("name", "type", "durable", "auto_delete", "internal", "arguments")
    return list(load_definitions({"exchanges": [{k: f[k] for k in keys} for f in found]}).exchanges)


def _missing(name: str) -> UnknownExchange:
    return UnknownExchange(name, f"no exchange {name!r} on the broker; check the name and the vhost")


@dataclass(frozen=True, slots=True)
class Tap:
    """A tail in progress: the binding made, and the consumer of its queue."""

    binding: Binding
    consumer: Consumer
    transport: Transport

    @property
    def queue(self) -> str:
        return self.binding.destination

    def read(
        self,
        registry: SchemaRegistry | None = None,
        *,
        limit: int | None = None,
        timeout: float | None = None,
    ) -> Iterator[tuple[Delivery, Envelope | Rejection]]:
        """`decoded` deliveries, each acked once handed on: the queue is the tail's own."""
        for delivery, result in decoded(self.consumer, registry, limit=limit, timeout=timeout):
            yield delivery, result
            self.transport.ack(delivery)


@contextmanager
def open_tail(
    transport: Transport, tail: Tail, *, url: str | None = None, prefetch: int = 100
) -> Iterator[Tap]:
    """Bind a temporary queue as `tail` says and consume from it; on exit the consumer is
    cancelled, which deletes the queue (auto-delete). `url` (with its credentials) names the broker whose
    management API tells the exchange's settings. Raises `UnknownExchange` when the broker
    does not have the exchange, `DeclareConflicts` when it has it with other settings than
    guessed (give `exchange_type`)."""
    queue = Queue(f"routing.tail.{uuid.uuid4().hex[:12]}", durable=False, exclusive=True, auto_delete=True)
    exchanges = broker_exchanges(tail, url)
    target = next((x for x in exchanges if x.name == tail.exchange), None)
    binding = tail.binding(target, queue.name)
    report = transport.declare(Topology.of([queue, binding, *exchanges]))
    try:
        if target is not None and f"exchange {tail.exchange!r}" in report.created:
            transport.delete_exchange(tail.exchange)  # the guess brought it into existence: undo
            raise _missing(tail.exchange)
        consumer = transport.consume(queue.name, prefetch=prefetch)
    except BaseException:
        with suppress(RoutingError):  # exclusive: it would go with the connection all the same
            transport.delete_queue(queue.name)
        raise
    try:
        yield Tap(binding, consumer, transport)
    finally:
        with suppress(RoutingError):  # a lost connection took the consumer with it
            consumer.cancel()  # and the queue with it: it is auto-delete


# ------------------------------------------------------------------ reading a queue


class ReadOutcome(StrEnum):
    ACKED = "acked"  # an envelope: acked
    DEAD_LETTERED = "dead-lettered"  # not one: rejected to the queue's dead-letter exchange
    KEPT = "kept"  # not one, and no dead-letter exchange: unacked, back on the queue at the end
    LEFT = "left"  # read without acks: everything stays on the queue


@dataclass(frozen=True, slots=True)
class Read:
    """One delivery read from a queue, decoded, and what is done with it once handed on."""

    delivery: Delivery
    result: Envelope | Rejection
    outcome: ReadOutcome
    dead_letter_exchange: str | None = None  # where a DEAD_LETTERED one goes


def dead_letter_exchange(url: str | None, queue: str) -> str | None:
    """The queue's dead-letter exchange, when the management API of the broker at `url` tells
    it has one that routes somewhere; None when it has none, or nobody can tell."""
    if url is None:
        return None
    try:
        return Management.for_broker(url).dead_letter_exchange(queue)
    except RoutingError:  # no management API, or a URL that names none (memory://)
        return None


class _Fetcher:
    """A consumer's `get`/`cancel` over basic.get, one message at a time: the broker hands
    out no more than are asked for (a prefetch window would take more, and give them back
    redelivered when reading stops)."""

    POLL = 0.05

    def __init__(self, transport: Transport, queue: str) -> None:
        self.transport = transport
        self.queue = queue

    def get(self, timeout: float | None = None) -> Delivery | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (item := self.transport.get(self.queue)) is None:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            self.transport.wait(self.POLL if remaining is None else min(self.POLL, remaining))
        return item

    def cancel(self) -> None:
        """Nothing to stop: what is still unacked goes back to the queue when the transport closes."""


def read_queue(
    transport: Transport,
    queue: str,
    registry: SchemaRegistry | None = None,
    *,
    event_type: str | None = None,
    ack: bool = True,
    limit: int | None = None,
    timeout: float | None = None,
    prefetch: int = 100,
    url: str | None = None,
) -> Iterator[Read]:
    """The deliveries on `queue`, decoded (`event_type` for plain JSON bodies), until `limit`
    of them or `timeout` seconds with none. Once a `Read` is handed on, an envelope is acked
    and anything else rejected to the queue's dead-letter exchange (the management API at
    `url` tells which) or, without one, kept unacked: it goes back to the queue when the
    transport closes. `ack=False` leaves everything on the queue. With a `limit`, messages
    are fetched one at a time, so none is taken beyond it."""
    dlx = dead_letter_exchange(url, queue) if ack else None
    # Without acks, a prefetch window would stall after `prefetch` messages.
    source = (
        _Fetcher(transport, queue) if limit else transport.consume(queue, prefetch=prefetch if ack else 0)
    )
    reads = decoded(source, registry, event_type=event_type, limit=limit, timeout=timeout)
    return _settled(transport, reads, ack, dlx)  # consuming started already: errors come now


def _settled(
    transport: Transport, reads: Iterator[tuple[Delivery, Envelope | Rejection]], ack: bool, dlx: str | None
) -> Iterator[Read]:
    for delivery, result in reads:
        if not ack:
            yield Read(delivery, result, ReadOutcome.LEFT)
        elif not isinstance(result, Rejection):
            yield Read(delivery, result, ReadOutcome.ACKED)
            transport.ack(delivery)
        elif dlx is not None:
            yield Read(delivery, result, ReadOutcome.DEAD_LETTERED, dlx)
            transport.reject(delivery, requeue=False)  # the queue's dead-letter exchange takes it
        else:
            yield Read(delivery, result, ReadOutcome.KEPT)
