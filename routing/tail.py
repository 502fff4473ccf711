"""Watch what flows through an exchange, on a temporary queue of one's own.

    watch = Tail("logs", routing_key="*.error")
    with open_transport(url) as transport, open_tail(transport, watch, url=url) as tap:
        for delivery in tap.consumer:
            ...

A temporary exclusive, auto-delete queue is bound to the exchange (with the binding key for a
topic or direct exchange, header rules for a headers exchange, nothing for fanout), so the
exchange copies each message to it too: nothing is taken from anyone. The exchange is declared
exactly as the broker has it (read from the management API), so declaring it changes nothing;
when nobody can tell, its type is guessed from the rule, and an exchange the guess created
is deleted again: tail never leaves an exchange behind.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from routing._frozen import EMPTY, FrozenDict
from routing.definitions import load_definitions
from routing.errors import ConnectionFailed, RoutingError, TopologyError, UnknownExchange
from routing.management import Management
from routing.topology import Binding, Exchange, ExchangeType, Queue, Topology
from routing.transport.base import Consumer, Transport

__all__ = ["Tail", "Tap", "open_tail"]

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
        raise UnknownExchange(name, f"no exchange {name!r} on the broker; check the name and the vhost")
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


@dataclass(frozen=True, slots=True)
class Tap:
    """A tail in progress: the binding made, and the consumer of its queue."""

    binding: Binding
    consumer: Consumer

    @property
    def queue(self) -> str:
        return self.binding.destination


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
            raise UnknownExchange(
                tail.exchange, f"no exchange {tail.exchange!r} on the broker; check the name and vhost"
            )
        consumer = transport.consume(queue.name, prefetch=prefetch)
    except BaseException:
        with suppress(RoutingError):  # exclusive: it would go with the connection all the same
            transport.delete_queue(queue.name)
        raise
    try:
        yield Tap(binding, consumer)
    finally:
        with suppress(RoutingError):  # a lost connection took the consumer with it
            consumer.cancel()  # and the queue with it: it is auto-delete
