"""The `memory://` transport: a connection to the embedded, in-process broker.

Every `MemoryTransport` opened on the same URL talks to one broker (`memory://` and
`memory://other` are two), the way several connections share one RabbitMQ: that is how a
demo runs a publisher, service instances and workers in one process. Publisher confirms are
always on and settle at once. Exclusive queues belong to the transport that declared them;
closing it requeues what it left unacked and deletes them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from routing.embedded.broker import EmbeddedBroker
from routing.embedded.channel import ChannelState, Subscription
from routing.embedded.registry import broker_for
from routing.errors import (
    BrokerError,
    ChannelClosed,
    ConnectionFailed,
    ConnectionLost,
    DeclareConflicts,
    Nacked,
    Unroutable,
)
from routing.properties import Properties
from routing.topology import Binding, Exchange, Queue, Topology
from routing.transport._declare import declare_topology
from routing.transport.base import (
    ConsumerBase,
    DeclareReport,
    Delivery,
    Outcome,
    Publication,
    TransportBase,
    queue_name,
)
from routing.urls import MEMORY_URL, is_memory, redact

__all__ = ["MemoryConsumer", "MemoryTransport"]


_NO_PROPERTIES = Properties()


class MemoryConsumer(ConsumerBase):
    """Deliveries from one queue of the embedded broker; see `routing.transport.Consumer`."""

    def __init__(self, broker: EmbeddedBroker, sub: Subscription) -> None:
        self.queue = sub.queue.name
        self.prefetch = sub.prefetch
        self._broker = broker
        self._sub = sub
        self._cancelled = False  # by the user (or by closing the transport)
        self._lost: str | None = None  # why the broker closed the connection, if it did

    def get(self, timeout: float | None = None) -> Delivery | None:
        """The next delivery, or None after `timeout` seconds (None: wait until cancelled)."""
        sub = self._sub
        broker = self._broker
        with broker.lock:
            if sub.buffer:
                return sub.buffer.popleft()
            end = None if timeout is None else broker.clock() + timeout
            while True:
                broker.expire_due()  # may deliver to us: a dead-lettered message, say
                if sub.buffer:
                    return sub.buffer.popleft()
                if sub.lost and not self._cancelled:
                    raise BrokerError(f"queue {self.queue!r} was deleted: the broker cancelled the consumer")
                if self._lost is not None:
                    raise ConnectionLost(f"connection closed by the broker: {self._lost}")
                if sub.cancelled:
                    return None
                now = broker.clock()
                wait = None if end is None else end - now
                if wait is not None and wait <= 0:
                    return None
                # Wake for the next TTL deadline too: no timer thread expires messages.
                deadline = broker.next_deadline()
                if deadline is not None:
                    wait = deadline - now if wait is None else min(wait, deadline - now)
                broker.waiting.add(sub)
                try:
                    sub.cond.wait(wait)
                finally:
                    broker.waiting.discard(sub)

    def cancel(self) -> None:
        """Stop receiving and close the consumer's channel: every delivery it had unacked,
        taken or not, goes back to the queue (redelivered); acking one later does nothing."""
        with self._broker.lock:
            self._cancelled = True
            self._broker.cancel(self._sub)

    @property
    def cancelled(self) -> bool:
        return self._sub.cancelled

    def take(self) -> Delivery | None:
        """The next delivery without waiting: None when there is none yet or once cancelled;
        `BrokerError` when the broker cancelled the consumer (its queue was deleted)."""
        return self.get(0)

    def until_due(self) -> float | None:
        """Seconds until the broker's next message TTL runs out (a waiting reader must look
        again then: no timer thread expires messages), or None when none is pending."""
        broker = self._broker
        with broker.lock:
            deadline = broker.next_deadline()
            return None if deadline is None else max(0.0, deadline - broker.clock())

    def on_ready(self, wake: Callable[[], None]) -> None:
        """Call `wake()` (under the broker's lock, from whichever thread) whenever this
        consumer's reader should look again: a delivery, a cancel, a new TTL deadline. For a
        reader that waits elsewhere than in `get`, such as on an event loop."""
        with self._broker.lock:
            self._sub.cond = _WakingCondition(self._broker.lock, wake)


class _WakingCondition(threading.Condition):
    """The consumer's Condition, which also calls `wake` when it notifies."""

    def __init__(self, lock: threading.Lock, wake: Callable[[], None]) -> None:
        super().__init__(lock)
        self._wake = wake

    def notify(self, n: int = 1) -> None:
        super().notify(n)
        self._wake()

    def notify_all(self) -> None:
        super().notify_all()
        self._wake()


class _BrokerOps:
    """`DeclareOps` on the embedded broker, for the transport that owns its exclusive queues.
    The broker knows every binding; it has no definitions to read, and names a difference
    as RabbitMQ's redeclare does."""

    def __init__(self, broker: EmbeddedBroker, owner: MemoryTransport) -> None:
        self._broker = broker
        self._owner = owner

    def exchange_exists(self, name: str) -> bool:
        return self._broker.exchange(name) is not None

    def queue_exists(self, name: str) -> bool:
        return self._broker.has_queue(name)

    def binding_exists(self, binding: Binding) -> bool:
        return self._broker.has_binding(binding)

    def definitions(self) -> None:
        return None

    def declare_exchange(self, exchange: Exchange) -> None:
        self._broker.declare_exchange(exchange)

    def declare_queue(self, queue: Queue) -> None:
        self._broker.declare_queue(queue, self._owner)

    def bind(self, binding: Binding) -> None:
        self._broker.bind(binding, self._owner)


class MemoryTransport(TransportBase):
    """A connection to the embedded broker named by a `memory://` URL. `name` (unique by
    default) is what `broker.connections.close(name)` closes it by."""

    _publication: type[Publication] = Publication  # what `publish` returns (asyncio's: awaitable)

    def __init__(self, url: str = MEMORY_URL, *, name: str | None = None) -> None:
        if not is_memory(url):
            raise ConnectionFailed(f"{redact(url)}: not a memory:// URL")
        self.url = redact(url)
        self._broker = broker_for(url)
        self.name = self._broker.connections.opened(self, name)
        self._lost: str | None = None  # why the broker closed the connection, if it did
        self._get_channel = ChannelState(self)
        self._channels: list[ChannelState] = [self._get_channel]
        self._consumers: list[MemoryConsumer] = []
        self._failures: list[Publication] = []
        self._sequence = 0
        self._closed = False

    @property
    def broker(self) -> EmbeddedBroker:
        return self._broker

    @property
    def server_version(self) -> str:
        """The release the embedded broker behaves as: its profile's name ("4.0")."""
        return self._broker.profile.name

    def _check_open(self) -> None:
        if self._lost is not None:
            raise ConnectionLost(f"{self.url}: connection closed by the broker: {self._lost}")
        if self._closed:
            raise BrokerError(f"{self.url}: the transport is closed")

    # -------------------------------------------------------------- topology

    def declare(self, topology: Topology) -> DeclareReport:
        """Exchanges, then queues, then bindings. Every conflict is collected (bindings to a
        refused entity are skipped, and named) and raised together as `DeclareConflicts`."""
        with self._broker.lock:
            self._check_open()
            report = declare_topology(topology, _BrokerOps(self._broker, self))
        if report.conflicts:
            raise DeclareConflicts(report.conflicts, report)
        return report

    def unbind(self, binding: Binding) -> None:
        """Remove a binding; a missing one is fine, as on RabbitMQ."""
        with self._broker.lock:
            self._check_open()
            self._broker.unbind(binding, self)

    def purge(self, queue: str) -> int:
        queue = queue_name(queue)
        with self._broker.lock:
            self._check_open()
            self._broker.expire_due()
            return self._broker.queue(queue, self).purge()

    def delete_queue(self, queue: str) -> None:
        queue = queue_name(queue)
        with self._broker.lock:
            self._check_open()
            self._broker.delete_queue(queue, self)

    def delete_exchange(self, exchange: str) -> None:
        with self._broker.lock:
            self._check_open()
            self._broker.delete_exchange(exchange)

    def message_count(self, queue: str) -> int:
        """Ready messages in a queue (what a passive `queue.declare` reports)."""
        queue = queue_name(queue)
        with self._broker.lock:
            self._check_open()
            self._broker.queue(queue, self)
            return self._broker.message_count(queue)

    # ------------------------------------------------------------- publishing

    def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: Properties | None = None,
        *,
        mandatory: bool = False,
    ) -> Publication:
        """Route the message now; the publication comes back already settled (a refused
        publish, say to an unknown exchange, settles UNCONFIRMED with the `ChannelClosed`)."""
        if type(body) is not bytes:
            body = body.encode() if isinstance(body, str) else bytes(body)
        with self._broker.lock:
            self._check_open()
            self._sequence += 1
            publication = self._publication(exchange, routing_key, self._sequence, Outcome.CONFIRMED)
            try:
                routed, accepted = self._broker.publish(
                    exchange, routing_key, body, properties or _NO_PROPERTIES
                )
            except ChannelClosed as exc:
                # RabbitMQ answers a publish it refuses (unknown or internal exchange, bad
                # expiration) by closing the channel, not with a confirm: the RabbitMQ
                # transport settles it UNCONFIRMED with that error and carries on.
                publication.outcome = Outcome.UNCONFIRMED
                publication.error = exc
                self._failures.append(publication)
                return publication
            if not accepted:
                shown = exchange or "(default exchange)"
                publication.outcome = Outcome.NACKED
                publication.error = Nacked(
                    f"the broker nacked the message to exchange {shown!r} key {routing_key!r}"
                )
                self._failures.append(publication)
            elif mandatory and not routed:
                publication.outcome = Outcome.RETURNED
                publication.error = Unroutable(exchange, routing_key)
                self._failures.append(publication)
        return publication

    def flush(self, timeout: float | None = None) -> list[Publication]:
        """Publications not confirmed since the last flush (everything is settled already)."""
        with self._broker.lock:
            failures, self._failures = self._failures, []
        return failures

    def wait(self, timeout: float) -> None:
        """Nothing to service in process: TTLs expire as operations and waiting consumers
        pass by. Sleeps, so a keep-alive loop does not spin."""
        self._check_open()
        time.sleep(max(0.0, min(timeout, 0.1)))

    # -------------------------------------------------------------- consuming

    def consume(self, queue: str, *, prefetch: int = 1) -> MemoryConsumer:
        """Start a consumer with at most `prefetch` unacked deliveries (0: no limit)."""
        queue = queue_name(queue)
        if prefetch < 0:
            raise ValueError(f"prefetch must be 0 (unlimited) or more, got {prefetch}")
        broker = self._broker
        with broker.lock:
            self._check_open()
            q = broker.queue(queue, self)
            broker.expire_due()
            # Channels of cancelled consumers with nothing unacked are done with.
            live = {id(c._sub.channel) for c in self._consumers if not c.cancelled}
            keep = self._get_channel
            self._channels = [c for c in self._channels if c is keep or c.unacked or id(c) in live]
            channel = ChannelState(self)
            self._channels.append(channel)
            sub = broker.subscribe(q, channel, prefetch)
            consumer = MemoryConsumer(broker, sub)
            self._consumers = [c for c in self._consumers if not c.cancelled]
            self._consumers.append(consumer)
        return consumer

    def get(self, queue: str) -> Delivery | None:
        """One message with manual ack (`basic.get`), or None when the queue is empty."""
        queue = queue_name(queue)
        broker = self._broker
        with broker.lock:
            self._check_open()
            broker.expire_due()
            try:
                q = broker.queue(queue, self)
            except ChannelClosed:
                # RabbitMQ closes the channel of a refused basic.get: what it had unacked goes
                # back, and the next channel's delivery tags start at 1 again.
                broker.close_channels([self._get_channel])
                self._channels.remove(self._get_channel)
                self._get_channel = ChannelState(self)
                self._channels.append(self._get_channel)
                raise
            q.touch()
            msg = q.fetch()
            broker.send_dead_letters()
            if msg is None:
                return None
            return self._get_channel.deliver(q, msg, None)

    def _settle(self, delivery: Delivery, what: str, multiple: bool, action: str) -> None:
        channel = delivery.consumer
        if not isinstance(channel, ChannelState) or channel.owner is not self:
            raise BrokerError(f"{what}: this delivery did not come from this transport")
        with self._broker.lock:
            if channel.closed:
                return  # its channel closed (cancel, close): the message is back in its queue
            self._broker.settle(channel, delivery.delivery_tag, multiple, action)

    def ack(self, delivery: Delivery, *, multiple: bool = False) -> None:
        self._settle(delivery, "ack", multiple, "ack")

    def nack(self, delivery: Delivery, *, requeue: bool = True, multiple: bool = False) -> None:
        self._settle(delivery, "nack", multiple, "requeue" if requeue else "reject")

    def reject(self, delivery: Delivery, *, requeue: bool = True) -> None:
        self._settle(delivery, "reject", False, "requeue" if requeue else "reject")

    # ------------------------------------------------------------------ close

    def close(self) -> None:
        """Cancel consumers, requeue unacked deliveries (redelivered), delete exclusive queues."""
        broker = self._broker
        with broker.lock:
            if self._closed:
                return
            self._closed = True
            for consumer in self._consumers:
                consumer._cancelled = True
                broker.cancel(consumer._sub)
            broker.close_channels(self._channels)
            for name in broker.queues_owned_by(self):
                broker.delete_queue(name, self)
            self._consumers.clear()
            self._channels.clear()
            self._broker.connections.closed(self.name)

    def sever(self, reason: str) -> None:
        """The broker closes this connection (`broker.connections.close(name)`): it is
        closed, and every later call, a consumer's `get` too, raises `ConnectionLost`."""
        with self._broker.lock:
            self._lost = reason
            for consumer in self._consumers:
                consumer._lost = reason
        self.close()

    def __repr__(self) -> str:
        return f"MemoryTransport({self.url!r})"
