"""A transport that remembers what was published through it, for `Broker.assert_published`."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from routing.properties import Properties
from routing.topology import Binding, Topology
from routing.transport import Consumer, DeclareReport, Delivery, Publication, Transport


@dataclass(frozen=True, slots=True)
class Published:
    """One message a test's code published: where to, what, and the broker's answer
    (`publication.outcome`, once flushed)."""

    exchange: str
    routing_key: str
    body: bytes
    properties: Properties
    mandatory: bool
    publication: Publication = field(compare=False)

    @property
    def type(self) -> str | None:
        """The event type (the envelope's, in the AMQP `type` property), if it has one."""
        return self.properties.type

    @property
    def id(self) -> str | None:
        """The AMQP `message_id` (an envelope's id)."""
        return self.properties.message_id

    def describe(self) -> str:
        """`order.created (id 1f2e...) to exchange 'shop.events' key 'order.created'`."""
        what = self.type or f"body {self.body[:60]!r}"
        ident = f" (id {self.id})" if self.id else ""
        exchange = self.exchange or "(default exchange)"
        return f"{what}{ident} to exchange {exchange!r} key {self.routing_key!r}"


class RecordingTransport:
    """`Transport` over another one, keeping a `Published` for every `publish`; everything
    else goes straight through. Closing it closes the transport it wraps."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.url = inner.url
        self.published: list[Published] = []

    @property
    def server_version(self) -> str:
        return self.inner.server_version

    @property
    def closed(self) -> bool:
        return self.inner.closed

    def declare(self, topology: Topology) -> DeclareReport:
        return self.inner.declare(topology)

    def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: Properties | None = None,
        *,
        mandatory: bool = False,
    ) -> Publication:
        publication = self.inner.publish(exchange, routing_key, body, properties, mandatory=mandatory)
        self.published.append(
            Published(exchange, routing_key, body, properties or Properties(), mandatory, publication)
        )
        return publication

    def flush(self, timeout: float | None = None) -> list[Publication]:
        return self.inner.flush(timeout)

    def batch(self) -> AbstractContextManager[None]:
        return self.inner.batch()

    def consume(self, queue: str, *, prefetch: int = 1) -> Consumer:
        return self.inner.consume(queue, prefetch=prefetch)

    def get(self, queue: str) -> Delivery | None:
        return self.inner.get(queue)

    def ack(self, delivery: Delivery, *, multiple: bool = False) -> None:
        self.inner.ack(delivery, multiple=multiple)

    def nack(self, delivery: Delivery, *, requeue: bool = True, multiple: bool = False) -> None:
        self.inner.nack(delivery, requeue=requeue, multiple=multiple)

    def reject(self, delivery: Delivery, *, requeue: bool = True) -> None:
        self.inner.reject(delivery, requeue=requeue)

    def wait(self, timeout: float) -> None:
        self.inner.wait(timeout)

    def message_count(self, queue: str) -> int:
        return self.inner.message_count(queue)

    def unbind(self, binding: Binding) -> None:
        self.inner.unbind(binding)

    def purge(self, queue: str) -> int:
        return self.inner.purge(queue)

    def delete_queue(self, queue: str) -> None:
        self.inner.delete_queue(queue)

    def delete_exchange(self, exchange: str) -> None:
        self.inner.delete_exchange(exchange)

    def close(self) -> None:
        self.inner.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
