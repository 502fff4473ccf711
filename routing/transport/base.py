"""The transport interface both brokers implement, and the values that cross it.

A transport moves bytes with AMQP 0-9-1 properties; envelopes are a layer above it.
`open_transport(url)` picks the implementation: `memory://` is the embedded broker,
`amqp://` and `amqps://` are RabbitMQ.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

from routing._amqp import shortstr
from routing.errors import BrokerError, Nacked, PublishUnconfirmed, Unroutable
from routing.properties import Properties as Properties  # re-exported: it moved below `envelope`
from routing.topology import Binding, Topology

__all__ = [
    "Consumer",
    "ConsumerBase",
    "DeclareReport",
    "Delivery",
    "Outcome",
    "Publication",
    "Transport",
    "TransportBase",
    "queue_name",
]


@dataclass(frozen=True, slots=True)
class Delivery:
    """A message handed to a consumer or returned by `get`. Ack it by passing it back."""

    body: bytes
    properties: Properties
    exchange: str
    routing_key: str
    queue: str
    delivery_tag: int
    redelivered: bool = False
    # Which consumer (or channel) owns the tag; transports use it to ack on the right one.
    consumer: Any = field(default=None, repr=False, compare=False)

    @property
    def headers(self) -> Mapping[str, Any]:
        return self.properties.headers


class Outcome(StrEnum):
    CONFIRMED = "confirmed"  # the broker took responsibility for it
    RETURNED = "returned"  # mandatory and unroutable: see `Unroutable`
    NACKED = "nacked"  # the broker refused it
    UNCONFIRMED = "unconfirmed"  # the connection dropped before an answer came


@dataclass(slots=True)
class Publication:
    """A published message's fate; `outcome` is None until the broker has answered."""

    exchange: str
    routing_key: str
    sequence: int
    outcome: Outcome | None = None
    # Why it was not confirmed (Unroutable, Nacked, ConnectionLost, ChannelClosed...).
    error: BrokerError | None = field(default=None, repr=False, compare=False)

    @property
    def settled(self) -> bool:
        return self.outcome is not None

    def raise_for_outcome(self) -> None:
        """Raise the error behind a RETURNED, NACKED or UNCONFIRMED outcome; nothing when
        CONFIRMED. Unsettled publications raise `PublishUnconfirmed` too: flush first."""
        if self.outcome is Outcome.CONFIRMED:
            return
        if self.error is not None:
            raise self.error
        if self.outcome is Outcome.RETURNED:
            raise Unroutable(self.exchange, self.routing_key)
        shown = self.exchange or "(default exchange)"
        where = f"message to exchange {shown!r} key {self.routing_key!r}"
        if self.outcome is Outcome.NACKED:
            raise Nacked(f"the broker nacked the {where}")
        if self.outcome is None:
            raise PublishUnconfirmed(f"{where}: not settled yet; call flush() first")
        raise PublishUnconfirmed(f"{where}: no confirm came before the connection dropped")


@dataclass(frozen=True, slots=True)
class DeclareReport:
    """What `declare` did: names created, and names that already existed unchanged.

    `unverified`: bindings declared again whose earlier existence could not be checked
    (AMQP cannot ask; RabbitMQ's management API did not answer). `conflicts`: one line per
    setting the broker has otherwise (`declare` raises `DeclareConflicts`); `skipped`: the
    bindings left out because one of their ends conflicts.
    """

    created: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    unverified: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()  # bindings not declared because an end of theirs conflicts

    @property
    def changed(self) -> bool:
        return bool(self.created)


@runtime_checkable
class Consumer(Protocol):
    """Deliveries from one queue, at most `prefetch` unacked at a time. Use as a context
    manager (leaving it cancels)."""

    queue: str
    prefetch: int

    @property
    def cancelled(self) -> bool:
        """True once `cancel` was called (or the transport closed)."""
        ...

    def __iter__(self) -> Iterator[Delivery]: ...
    def get(self, timeout: float | None = None) -> Delivery | None:
        """The next delivery, or None after `timeout` seconds with none."""
        ...

    def cancel(self) -> None:
        """Stop receiving; unacked deliveries go back to the queue when the channel closes."""
        ...

    def __enter__(self) -> Self: ...
    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


@runtime_checkable
class Transport(Protocol):
    """One small interface, two brokers. Use as a context manager."""

    url: str  # redacted: never holds a password

    @property
    def server_version(self) -> str:
        """The RabbitMQ version the broker announced ("3.10.8", "4.0.5"); the embedded broker
        gives its profile's. `routing.profiles.profile(transport.server_version)` picks the rules."""
        ...

    def declare(self, topology: Topology) -> DeclareReport: ...
    def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: Properties | None = None,
        *,
        mandatory: bool = False,
    ) -> Publication:
        """Send; returns at once. The publication settles when the broker answers."""
        ...

    def flush(self, timeout: float | None = None) -> list[Publication]:
        """Wait until every publication so far is settled; returns those that were not
        confirmed (returned, nacked, unconfirmed). Raises nothing for them."""
        ...

    def batch(self) -> AbstractContextManager[None]:
        """A context inside which publishes may be written many to a `send` (opt-in: by
        default a publish is on the wire when it returns). Everything published inside is
        on the wire before the transport waits or reads, and when the context ends, even by
        an exception. Only RabbitTransport batches; elsewhere it changes nothing."""
        ...

    def consume(self, queue: str, *, prefetch: int = 1) -> Consumer: ...
    def get(self, queue: str) -> Delivery | None:
        """One message with manual ack (`basic.get`), or None when the queue is empty."""
        ...

    def ack(self, delivery: Delivery, *, multiple: bool = False) -> None: ...
    def nack(self, delivery: Delivery, *, requeue: bool = True, multiple: bool = False) -> None: ...
    def reject(self, delivery: Delivery, *, requeue: bool = True) -> None: ...
    def wait(self, timeout: float) -> None:
        """Service the connection (heartbeats, confirms) for up to `timeout` seconds; returns
        early when another thread wants the transport. For a thread that keeps a connection
        alive while the one that owns it is busy."""
        ...

    def message_count(self, queue: str) -> int:
        """Ready messages in `queue` (what a passive `queue.declare` reports)."""
        ...

    def unbind(self, binding: Binding) -> None:
        """Remove a binding; a missing one is fine, as on RabbitMQ."""
        ...

    def purge(self, queue: str) -> int: ...
    def delete_queue(self, queue: str) -> None: ...
    def delete_exchange(self, exchange: str) -> None: ...
    def close(self) -> None: ...

    @property
    def closed(self) -> bool:
        """True once `close` was called: every other call then raises `BrokerError`."""
        ...

    def __enter__(self) -> Self: ...
    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


def queue_name(queue: str) -> str:
    """`queue` if AMQP can carry it as a queue name (a string of at most 255 UTF-8 bytes), else
    `PropertyError`: both peers refuse it before anything is sent."""
    shortstr("queue", queue)
    return queue


class TransportBase:
    """What both transports share: `closed`, and use as a context manager (leaving closes)."""

    _closed: bool = False

    @property
    def closed(self) -> bool:
        """True once `close` was called: every other call then raises `BrokerError`."""
        return self._closed

    def close(self) -> None:
        raise NotImplementedError

    def batch(self) -> AbstractContextManager[None]:
        """See `Transport.batch`: here, nothing to batch."""
        return nullcontext()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class ConsumerBase:
    """What both consumers share: iteration until cancelled, and use as a context manager
    (leaving cancels)."""

    def get(self, timeout: float | None = None) -> Delivery | None:
        raise NotImplementedError

    def cancel(self) -> None:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Delivery]:
        """Deliveries as they come, until the consumer is cancelled."""
        while (delivery := self.get()) is not None:
            yield delivery

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cancel()
