"""`RabbitTransport`: the `Transport` protocol over one `Connection` (`_connection`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from loguru import logger

from routing.errors import BrokerError, ChannelClosed, ConnectionLost, DeclareConflicts
from routing.properties import Properties
from routing.topology import Binding, Topology
from routing.transport._declare import declare_topology, redeclare
from routing.transport.base import DeclareReport, Delivery, Publication, TransportBase, queue_name
from routing.transport.rabbitmq import _pika
from routing.transport.rabbitmq._confirms import ConfirmTracker, Pending, Returned
from routing.transport.rabbitmq._connection import ChannelHandle, Connection
from routing.transport.rabbitmq._consumer import RabbitConsumer, delivery
from routing.transport.rabbitmq._declare_ops import ChannelOps, ManagementBindings
from routing.transport.rabbitmq._declared import Declared
from routing.transport.rabbitmq._encode import ACK, NACK, REJECT, encode_properties
from routing.transport.rabbitmq._facts import ConnectionFacts
from routing.transport.rabbitmq._pika import FrameWriter
from routing.transport.rabbitmq._url import parse_urls

POLL_EVERY = 64  # publishes between reads of the socket when the confirm window is not full


class RabbitTransport(ConnectionFacts[Connection], TransportBase):
    """The `Transport` for RabbitMQ. `RabbitTransport("amqp://guest:guest@localhost/")`, or
    a list of URLs (cluster nodes, tried in order). Connects at once.

    `window`: how many publications may await their confirm. `resend`: publish again, on
    the new connection, what was unconfirmed when one dropped (duplicates are possible;
    without it they settle UNCONFIRMED). `reconnect_timeout`: how long to keep trying
    before `ConnectionLost`. `name` shows in the management UI's connection list.
    """

    def __init__(
        self,
        url: str | Sequence[str],
        *,
        window: int = 1000,
        resend: bool = False,
        reconnect_timeout: float = 60.0,
        name: str | None = None,
    ) -> None:
        endpoints = parse_urls(url)
        self.url = ",".join(ep.url for ep in endpoints)
        self._resend = resend
        self._tracker = ConfirmTracker(window)
        self._to_resend: list[Pending] = []
        # Everything declared so far, declared again after a reconnect.
        self._declared = Declared()
        self._consumers: list[RabbitConsumer] = []
        self._pub: ChannelHandle | None = None  # confirm mode, for publish
        self._writer: FrameWriter | None = None  # writes to `_pub`
        self._unpolled = 0  # publishes since the socket was last read
        self._ctl: ChannelHandle | None = None  # declare, purge, delete
        self._getter: ChannelHandle | None = None  # basic.get, and the acks of what it got
        self._closed = False
        # The last properties value encoded, with its bytes: one tuple, so two threads
        # publishing at once never pair one's value with the other's bytes.
        self._last: tuple[Properties | None, bytes] = (None, b"")
        self._conn = Connection(
            endpoints,
            name=name,
            reconnect_timeout=reconnect_timeout,
            restore=self._restore,
            dropped=self._dropped,
        )
        self._lock = self._conn.lock
        # A dropped connection: recorded publications settle UNCONFIRMED (or wait to be sent
        # again), and the message goes on the next connection. Kept: publish is the hot path.
        self._publish_errors = self._conn.errors("publish", retry=True)

    @property
    def last_drop(self) -> str:
        """Why the connection dropped last: the broker's reason when it closed it ("" if never)."""
        return self._conn.last_drop

    # ------------------------------------------------------------ connection

    def _restore(self) -> None:
        """After a reconnect: declare again, resume the consumers, send again what waits."""
        d = self._declared
        for line in redeclare(d.exchanges.values(), d.queues.values(), d.bindings, self._ops()):
            logger.bind(url=self.url).error("declaring again after a reconnect: {}", line)
        for consumer in self._consumers:
            consumer.resume()
        if self._to_resend:
            # Each leaves `_to_resend` only when tracked again: if the connection drops
            # here too, `_dropped` finds every one of them, in order, for the next attempt.
            self._publisher()
            writer = self._writer
            assert writer is not None  # set with `_pub`
            while self._to_resend:
                p = self._to_resend.pop(0)
                self._tracker.resent(p)
                pub = p.publication
                writer.publish(pub.exchange, pub.routing_key, p.body, p.properties, p.mandatory)
            self._poll()

    def _dropped(self, error: ConnectionLost) -> None:
        """The connection is gone: its channels, and the confirms it will never send."""
        self._pub = self._ctl = self._getter = None
        for consumer in self._consumers:
            consumer.connection_lost()
        if self._resend:
            self._to_resend[:0] = self._tracker.take_pending()  # before any a restore did not reach
        else:
            self._tracker.lose_all(error)

    def _open(self, attr: str) -> ChannelHandle:
        chan: ChannelHandle | None = getattr(self, attr)
        if chan is None or not chan.alive:
            chan = self._conn.channel()
            setattr(self, attr, chan)
        return chan

    def _poll(self) -> None:
        """Read what has arrived and write what is buffered, without waiting."""
        self._unpolled = 0
        self._conn.pump(lambda: False, 0)

    # -------------------------------------------------------------- declare

    def _ops(self) -> ChannelOps:
        return ChannelOps(lambda what, call: self._conn.guarded(what, lambda: call(self._open("_ctl"))))

    def declare(self, topology: Topology) -> DeclareReport:
        """Declare idempotently; report what was created and what already existed. Every
        conflict is reported (`DeclareConflicts`, with the report), not only the first."""
        with self._lock:
            self._conn.live()
            report = declare_topology(topology, self._ops().reading(ManagementBindings(self._conn.endpoint)))
            self._declared.add(topology)
        if report.conflicts:
            raise DeclareConflicts(report.conflicts, report)
        return report

    def unbind(self, binding: Binding) -> None:
        """Remove a binding; a missing one is fine, as on RabbitMQ. It is not declared again
        after a reconnect."""
        self._control(f"unbind {binding.describe()}", lambda ch: ch.unbind(binding))
        with self._lock:
            self._declared.unbound(binding)

    # -------------------------------------------------------------- publish

    def _publisher(self) -> ChannelHandle:
        chan = self._pub
        if chan is not None and chan.alive:
            return chan
        if chan is not None:
            # Say 404 for an unknown exchange: that channel's unanswered publications are lost.
            refused = self._conn.refusal(chan, "publish")
            self._tracker.lose_all(refused or ChannelClosed(0, f"publishing channel closed: {chan.reason!r}"))
        self._conn.live()
        if self._pub is not None and self._pub.alive:
            # `live` reconnected and `_restore` opened it to re-send what was unconfirmed. A
            # second one would number its publishes from 1 again, over those still in flight.
            return self._pub
        chan = self._pub = self._conn.channel()
        self._writer = FrameWriter(chan.channel)
        self._tracker.restart()
        done: list[bool] = []
        tracker = self._tracker
        _pika.confirm(
            chan.channel, tracker.on_ack, tracker.on_nack, self._on_return, lambda _f: done.append(True)
        )
        self._conn.pump(lambda: bool(done) or not chan.alive, None)
        return chan

    def _on_return(
        self, code: int, text: str, exchange: str, routing_key: str, _properties: Properties, body: bytes
    ) -> None:
        self._tracker.on_return(Returned(exchange, routing_key, body, code, text))

    def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: Properties | None = None,
        *,
        mandatory: bool = False,
    ) -> Publication:
        """Send with a confirm to come; returns at once unless `window` publications are
        already in flight, then waits for room."""
        last, props = self._last
        if properties is None or properties is not last:  # else: one value reused
            props = encode_properties(properties)
            self._last = (properties, props)
        with self._lock:
            conn, tracker = self._conn, self._tracker
            publication = None
            try:
                with self._publish_errors:
                    chan = self._publisher()
                    if tracker.full:
                        conn.pump(lambda: not tracker.full or not chan.alive, None)
                        chan = self._publisher()
                    if not chan.is_open:
                        chan.alive = False  # closing: the next try opens another
                    else:
                        writer = self._writer
                        assert writer is not None  # set with `_pub`
                        # PropertyError here, before the publication is counted or a byte is sent.
                        frames = writer.frames(exchange, routing_key, body, props, mandatory)
                        publication = tracker.sent(exchange, routing_key, body, props, mandatory)
                        self._unpolled += 1
                        # Poll when the socket did not take it all (pika's loop writes the rest),
                        # and now and then to take in confirms, returns or a channel close.
                        if not writer.send(frames) or self._unpolled >= POLL_EVERY:
                            self._poll()
            except ChannelClosed:
                # The broker closed the channel (say 404 for an earlier publish to an unknown
                # exchange): its publications settle with that error at the next call.
                if self._pub is not None:
                    self._pub.alive = False
            if publication is None:  # nothing was sent: try on a fresh channel or connection
                return self.publish(exchange, routing_key, body, properties, mandatory=mandatory)
            return publication

    def batch(self) -> AbstractContextManager[None]:
        """Inside, what is published (and acked) is held back and written many messages to a
        `send`: at 64 KB, before anything waits or reads on the connection (a full confirm
        window, `flush`, `get`, `declare`...), and at the end, even by an exception."""
        return self._conn.batch()

    def flush(self, timeout: float | None = None) -> list[Publication]:
        """Wait for every publication's answer; return those not confirmed since the last
        flush. After `timeout` the still-unanswered ones are included, unsettled."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            conn, tracker = self._conn, self._tracker
            while len(tracker) or self._to_resend:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return tracker.take_failures() + tracker.unsettled()
                with conn.errors("flush", retry=True):
                    conn.live()
                    pub = self._publisher()
                    conn.pump(lambda: not len(tracker) or not pub.alive, remaining)  # noqa: B023
            return tracker.take_failures()

    # -------------------------------------------------------- consume and get

    def consume(self, queue: str, *, prefetch: int = 1) -> RabbitConsumer:
        queue = queue_name(queue)
        consumer = RabbitConsumer(
            self._conn,
            queue,
            prefetch,
            on_deleted=self._declared.queue_deleted,
            on_cancel=self._consumer_cancelled,
        )
        with self._lock:
            self._conn.guarded(f"consume from {queue!r}", consumer.start)
            self._consumers.append(consumer)
        return consumer

    def _consumer_cancelled(self, consumer: RabbitConsumer) -> None:
        if consumer in self._consumers:
            self._consumers.remove(consumer)

    def get(self, queue: str) -> Delivery | None:
        queue = queue_name(queue)

        def fetch() -> Delivery | None:
            chan = self._open("_getter")
            method, props, body = chan.channel.basic_get(queue, auto_ack=False)
            return None if method is None else delivery(method, props, body, queue, chan)

        with self._lock:
            return self._conn.guarded(f"get from {queue!r}", fetch)  # type: ignore[no-any-return]

    def _settle(self, item: Delivery, what: str, method: int, bits: int) -> None:
        """Send an ack, nack or reject for `item` on the channel it came from, without
        waiting (a refusal, such as an unknown tag, closes the channel: the consumer
        reports it at its next `get`)."""
        chan = item.consumer
        if not isinstance(chan, ChannelHandle):
            raise BrokerError(f"{what}: this delivery did not come from this transport")
        with self._lock:
            if not chan.is_open:
                # Its channel is gone, so the broker has already put the message back.
                logger.bind(queue=item.queue).info("{} of a delivery from a closed channel: skipped", what)
                return
            with self._conn.errors(what, retry=True):
                # More deliveries waiting means another ack comes soon: let the kernel send
                # both together. The last one goes at once (the consumer then waits).
                if not _pika.settle(chan.channel, method, item.delivery_tag, bits, more=bool(chan.backlog)):
                    self._poll()

    def ack(self, delivery: Delivery, *, multiple: bool = False) -> None:
        self._settle(delivery, "ack", ACK, multiple)

    def nack(self, delivery: Delivery, *, requeue: bool = True, multiple: bool = False) -> None:
        self._settle(delivery, "nack", NACK, multiple | requeue << 1)

    def reject(self, delivery: Delivery, *, requeue: bool = True) -> None:
        self._settle(delivery, "reject", REJECT, requeue)

    def wait(self, timeout: float) -> None:
        with self._lock, self._conn.errors("wait", retry=True):
            self._conn.live()
            self._conn.pump(lambda: self._lock.wanted, timeout)

    # ------------------------------------------------------------------ admin

    def _control(self, what: str, call: Callable[[ChannelHandle], Any]) -> Any:
        with self._lock:
            return self._conn.guarded(what, lambda: call(self._open("_ctl")))

    def message_count(self, queue: str) -> int:
        """Ready messages in a queue (a passive `queue.declare`)."""
        queue = queue_name(queue)
        frame = self._control(f"count {queue!r}", lambda ch: ch.queue_declare(queue, passive=True))
        return int(frame.method.message_count)

    def purge(self, queue: str) -> int:
        queue = queue_name(queue)
        frame = self._control(f"purge {queue!r}", lambda ch: ch.channel.queue_purge(queue))
        return int(frame.method.message_count)

    def delete_queue(self, queue: str) -> None:
        queue = queue_name(queue)
        self._control(f"delete queue {queue!r}", lambda ch: ch.channel.queue_delete(queue))
        with self._lock:
            self._declared.queue_deleted(queue)

    def delete_exchange(self, exchange: str) -> None:
        self._control(f"delete exchange {exchange!r}", lambda ch: ch.channel.exchange_delete(exchange))
        with self._lock:
            self._declared.exchange_deleted(exchange)

    def close(self) -> None:
        """Close the connection. Unanswered publications settle UNCONFIRMED: flush first."""
        with self._lock:
            if self._closed:
                return
            self._resend = False
            error = ConnectionLost(f"{self.url}: transport closed before the confirm")
            self._conn.close(error)
            # Waiting to be sent again after a drop: they never will be now.
            self._tracker.lose(self._to_resend, error)
            self._to_resend = []
            for consumer in self._consumers:
                consumer.transport_closed()
            self._consumers = []
            self._closed = True

    def __repr__(self) -> str:
        return f"<RabbitTransport {self.url}>"
