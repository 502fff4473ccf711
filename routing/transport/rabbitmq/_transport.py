"""`RabbitTransport`: the `Transport` protocol over one pika `BlockingConnection`."""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Self

import pika
import pika.exceptions as px
from loguru import logger

from routing.errors import BrokerError, ChannelClosed, ConnectionFailed, ConnectionLost, DeclareConflicts
from routing.topology import Binding, Exchange, Queue, Topology
from routing.transport._declare import declare_topology, redeclare
from routing.transport.base import DeclareReport, Delivery, Properties, Publication
from routing.transport.rabbitmq._confirms import ConfirmTracker, Pending, Returned
from routing.transport.rabbitmq._connect import CONNECTION_ERRORS, channel_error, connect
from routing.transport.rabbitmq._consumer import Chan, FairLock, RabbitConsumer
from routing.transport.rabbitmq._declare_ops import ChannelOps, ManagementBindings
from routing.transport.rabbitmq._encode import encode_properties
from routing.transport.rabbitmq._frames import FrameWriter, send_method
from routing.transport.rabbitmq._url import parse_urls
from routing.transport.rabbitmq._wire import delivery

POLL_EVERY = 64  # publishes between reads of the socket when the confirm window is not full


class RabbitTransport:
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
        self._endpoints = parse_urls(url)
        self._endpoint = self._endpoints[0]
        self.url = ",".join(ep.url for ep in self._endpoints)
        self._name = name
        self._resend = resend
        self.reconnect_timeout = reconnect_timeout
        self.reconnects = 0
        self._conn: Any = None
        self._lock = FairLock(self._wake)
        self._tracker = ConfirmTracker(window)
        self._to_resend: list[Pending] = []
        # Everything declared so far, declared again after a reconnect.
        self._exchanges: dict[str, Exchange] = {}
        self._queues: dict[str, Queue] = {}
        self._bindings: dict[Binding, None] = {}
        self._consumers: list[RabbitConsumer] = []
        self._pub: Chan | None = None  # confirm mode, for publish
        self._writer: FrameWriter | None = None  # writes to `_pub`
        self._unpolled = 0  # publishes since the socket was last read
        self._ctl: Chan | None = None  # declare, purge, delete
        self._getter: Chan | None = None  # basic.get, and the acks of what it got
        self._closed = False
        self._last_properties: Properties | None = None
        self._last_encoded = b""
        self._conn = self._connect()

    @property
    def server_version(self) -> str:
        """The version in the broker's `connection.start` ("3.10.8"); "" when it gave none."""
        version = self._ensure()._impl.server_properties.get("version", b"")
        return version.decode(errors="replace") if isinstance(version, bytes) else str(version)

    # ------------------------------------------------------------ connection

    def _connect(self) -> Any:
        failures: list[ConnectionFailed] = []
        for ep in self._endpoints:
            try:
                conn = connect(ep, self._name)
            except ConnectionFailed as exc:
                failures.append(exc)
            else:
                self._endpoint = ep
                logger.bind(url=ep.url).debug("connected")
                return conn
        if len(failures) == 1:
            raise failures[0]
        raise ConnectionFailed("no broker answered: " + "; ".join(map(str, failures))) from failures[-1]

    def _ensure(self) -> Any:
        """The live connection, reconnecting (and restoring state) if it dropped."""
        if self._closed:
            raise BrokerError(f"{self.url}: the transport is closed")
        if self._conn is not None and self._conn.is_open:
            return self._conn
        if self._conn is not None:
            self._drop(ConnectionLost(f"{self.url}: connection closed"))
        deadline = time.monotonic() + self.reconnect_timeout
        attempt = 0
        while self._conn is None:
            try:
                self._conn = self._connect()
            except ConnectionFailed as exc:
                attempt += 1
                # Full jitter: clients that lost the same node do not come back in step.
                pause = random.uniform(0, min(5.0, 0.1 * 2**attempt))
                if time.monotonic() + pause > deadline:
                    raise ConnectionLost(
                        f"connection lost and not re-established within {self.reconnect_timeout:g}s: {exc}"
                    ) from exc
                logger.bind(url=self.url).warning("reconnect attempt {} failed: {}", attempt, exc)
                time.sleep(pause)
        self.reconnects += 1
        logger.bind(url=self._endpoint.url).warning("reconnected; restoring topology and consumers")
        try:
            self._restore()
        except CONNECTION_ERRORS as exc:
            self._drop(ConnectionLost(f"{self.url}: connection lost while restoring: {exc!r}"))
            return self._ensure()
        return self._conn

    def _restore(self) -> None:
        for line in redeclare(self._exchanges.values(), self._queues.values(), self._bindings, self._ops()):
            logger.bind(url=self.url).error("declaring again after a reconnect: {}", line)
        for consumer in self._consumers:
            try:
                consumer.start()
            except px.ChannelClosedByBroker as exc:  # its queue is gone (auto-delete, exclusive)
                logger.bind(queue=consumer.queue).error("cannot resume consumer: {}", exc)
                consumer.lost_queue = True
        if self._to_resend:
            # Each leaves `_to_resend` only when tracked again: if the connection drops
            # here too, `_drop` finds every one of them, in order, for the next attempt.
            self._publisher()
            writer = self._writer
            assert writer is not None  # set with `_pub`
            while self._to_resend:
                p = self._to_resend.pop(0)
                self._tracker.resent(p)
                pub = p.publication
                writer.publish(pub.exchange, pub.routing_key, p.body, p.properties, p.mandatory)
            self._poll()

    def _drop(self, error: BrokerError) -> None:
        """Forget a dead connection: its channels, and the confirms it will never send."""
        for chan in [self._pub, self._ctl, self._getter, *(c.chan for c in self._consumers)]:
            if chan is not None:
                chan.alive = False
        self._pub = self._ctl = self._getter = None
        for consumer in self._consumers:
            consumer.buffer.clear()  # the broker requeues them; they come again
            consumer.chan = None
        if self._resend:
            self._to_resend[:0] = self._tracker.take_pending()  # before any a restore did not reach
        else:
            self._tracker.lose_all(error)
        if self._conn is not None:
            with contextlib.suppress(Exception):  # already dead; closing is only tidying up
                self._conn.close()
        self._conn = None

    def _guarded(self, what: str, action: Callable[[], Any]) -> Any:
        """Run an idempotent channel operation: a refusal becomes ChannelClosed; after a
        dropped connection (restored) or a closed channel (reopened) it is tried once more."""
        for attempt in (1, 2):
            self._ensure()
            try:
                return action()
            except px.ChannelClosedByBroker as exc:
                raise channel_error(exc, what, self._endpoint) from exc
            except px.ChannelWrongStateError as exc:
                if attempt == 2:
                    raise ChannelClosed(0, f"channel closed during {what}") from exc
            except CONNECTION_ERRORS as exc:
                self._drop(ConnectionLost(f"{self.url}: connection lost during {what}: {exc!r}"))
                if attempt == 2:
                    raise ConnectionLost(f"{self._endpoint.url}: connection lost during {what}") from exc
        raise AssertionError("unreachable")

    def _open(self, attr: str) -> Chan:
        chan: Chan | None = getattr(self, attr)
        if chan is None or not chan.alive:
            chan = Chan(self._ensure().channel())
            setattr(self, attr, chan)
        return chan

    def _pump(self, ready: Callable[[], bool], timeout: float | None) -> None:
        """Process I/O until `ready()` or `timeout` seconds; raises pika's error if the
        connection drops. (`_flush_output` is BlockingConnection's own wait loop: unlike
        `process_data_events` it stops as soon as `ready()`.)"""
        conn = self._conn
        if timeout is None:
            conn._flush_output(ready)
            return
        fired: list[bool] = []
        handle = conn._impl.ioloop.call_later(max(timeout, 0), lambda: fired.append(True))
        try:
            conn._flush_output(lambda: bool(fired), ready)
        finally:
            conn._impl.ioloop.remove_timeout(handle)

    def _poll(self) -> None:
        """Read what has arrived and write what is buffered, without waiting."""
        self._unpolled = 0
        self._pump(lambda: False, 0)

    def _wake(self) -> None:
        """From another thread: end the current `_pump` poll early (pika's one thread-safe call)."""
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(Exception):  # closing or closed: nothing to wake
                conn._impl.ioloop.add_callback_threadsafe(_nothing)

    def _forget(self, consumer: RabbitConsumer) -> None:
        if consumer in self._consumers:
            self._consumers.remove(consumer)

    # -------------------------------------------------------------- declare

    def _ops(self) -> ChannelOps:
        return ChannelOps(lambda what, call: self._guarded(what, lambda: call(self._open("_ctl").channel)))

    def declare(self, topology: Topology) -> DeclareReport:
        """Declare idempotently; report what was created and what already existed. Every
        conflict is reported (`DeclareConflicts`, with the report), not only the first."""
        with self._lock:
            self._ensure()
            report = declare_topology(topology, self._ops().reading(ManagementBindings(self._endpoint)))
            self._exchanges.update((e.name, e) for e in topology.exchanges)
            self._queues.update((q.name, q) for q in topology.queues)
            self._bindings.update(dict.fromkeys(topology.bindings))
        if report.conflicts:
            raise DeclareConflicts(report.conflicts, report)
        return report

    # -------------------------------------------------------------- publish

    def _publisher(self) -> Chan:
        chan = self._pub
        if chan is not None and chan.alive:
            return chan
        if chan is not None:
            # Say 404 for an unknown exchange: that channel's unanswered publications are lost.
            reason = chan.reason
            error = (
                channel_error(reason, "publish", self._endpoint)
                if chan.closed_by_broker
                else ChannelClosed(0, f"publishing channel closed: {reason!r}")
            )
            self._tracker.lose_all(error)
        conn = self._ensure()
        if self._pub is not None and self._pub.alive:
            # `_ensure` reconnected and `_restore` opened it to re-send what was unconfirmed. A
            # second one would number its publishes from 1 again, over those still in flight.
            return self._pub
        chan = self._pub = Chan(conn.channel())
        self._writer = FrameWriter(chan.channel)
        self._tracker.restart()
        impl = chan.channel._impl
        done: list[bool] = []
        impl.add_on_return_callback(self._on_return)
        impl.confirm_delivery(self._on_confirm, callback=lambda _frame: done.append(True))
        self._pump(lambda: bool(done) or not chan.alive, None)
        return chan

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        if isinstance(method, pika.spec.Basic.Ack):
            self._tracker.on_ack(method.delivery_tag, method.multiple)
        else:
            self._tracker.on_nack(method.delivery_tag, method.multiple)

    def _on_return(self, _channel: Any, method: Any, _properties: Any, body: bytes) -> None:
        self._tracker.on_return(
            Returned(method.exchange, method.routing_key, body, method.reply_code, method.reply_text)
        )

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
        if properties is not None and properties is self._last_properties:  # one value reused
            props = self._last_encoded
        else:
            props = self._last_encoded = encode_properties(properties)
            self._last_properties = properties
        with self._lock:
            tracker = self._tracker
            publication = None
            try:
                chan = self._publisher()
                if tracker.full:
                    self._pump(lambda: not tracker.full or not chan.alive, None)
                    chan = self._publisher()
                if not chan.channel._impl.is_open:
                    raise px.ChannelWrongStateError("publishing channel closed")
                writer = self._writer
                assert writer is not None  # set with `_pub`
                # PropertyError here, before the publication is counted or a byte is sent.
                frames = writer.frames(exchange, routing_key, body, props, mandatory)
                publication = tracker.sent(exchange, routing_key, body, props, mandatory)
                self._unpolled += 1
                # Poll when the socket did not take it all (pika's loop writes the rest), and
                # now and then to take in confirms, returns or a channel close.
                if not writer.send(frames) or self._unpolled >= POLL_EVERY:
                    self._poll()
            except px.AMQPChannelError:
                # The broker closed the channel (say 404 for an earlier publish to an unknown
                # exchange): its publications settle with that error at the next call.
                chan.alive = False
            except CONNECTION_ERRORS as exc:
                # Recorded publications settle UNCONFIRMED (or wait to be sent again).
                self._drop(ConnectionLost(f"{self._endpoint.url}: connection lost while publishing: {exc!r}"))
            if publication is None:  # nothing was sent: try on a fresh channel or connection
                return self.publish(exchange, routing_key, body, properties, mandatory=mandatory)
            return publication

    def flush(self, timeout: float | None = None) -> list[Publication]:
        """Wait for every publication's answer; return those not confirmed since the last
        flush. After `timeout` the still-unanswered ones are included, unsettled."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            tracker = self._tracker
            while len(tracker) or self._to_resend:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return tracker.take_failures() + tracker.unsettled()
                try:
                    self._ensure()
                    pub = self._publisher()
                    self._pump(lambda: not len(tracker) or not pub.alive, remaining)  # noqa: B023
                except CONNECTION_ERRORS as exc:
                    self._drop(
                        ConnectionLost(f"{self._endpoint.url}: connection lost before confirms: {exc!r}")
                    )
            return tracker.take_failures()

    # -------------------------------------------------------- consume and get

    def consume(self, queue: str, *, prefetch: int = 1) -> RabbitConsumer:
        consumer = RabbitConsumer(self, queue, prefetch)
        with self._lock:
            self._guarded(f"consume from {queue!r}", consumer.start)
            self._consumers.append(consumer)
        return consumer

    def get(self, queue: str) -> Delivery | None:
        def fetch() -> Delivery | None:
            chan = self._open("_getter")
            method, props, body = chan.channel.basic_get(queue, auto_ack=False)
            return None if method is None else delivery(method, props, body, queue, chan)

        with self._lock:
            return self._guarded(f"get from {queue!r}", fetch)  # type: ignore[no-any-return]

    def _settle(self, item: Delivery, what: str, method: Any) -> None:
        """Send an ack, nack or reject for `item` on the channel it came from, without
        waiting (a refusal, such as an unknown tag, closes the channel: the consumer
        reports it at its next `get`)."""
        chan = item.consumer
        if not isinstance(chan, Chan):
            raise BrokerError(f"{what}: this delivery did not come from this transport")
        with self._lock:
            if not chan.alive or not chan.channel._impl.is_open:
                # Its channel is gone, so the broker has already put the message back.
                logger.bind(queue=item.queue).info("{} of a delivery from a closed channel: skipped", what)
                return
            try:
                # More deliveries waiting means another ack comes soon: let the kernel send
                # both together. The last one goes at once (the consumer then waits).
                if not send_method(chan.channel, method, more=bool(chan.backlog)):
                    self._poll()
            except px.ChannelClosedByBroker as exc:
                raise channel_error(exc, what, self._endpoint) from exc
            except (*CONNECTION_ERRORS, px.ChannelWrongStateError) as exc:
                self._drop(ConnectionLost(f"{self._endpoint.url}: connection lost during {what}: {exc!r}"))

    def ack(self, delivery: Delivery, *, multiple: bool = False) -> None:
        self._settle(delivery, "ack", pika.spec.Basic.Ack(delivery.delivery_tag, multiple))

    def nack(self, delivery: Delivery, *, requeue: bool = True, multiple: bool = False) -> None:
        self._settle(delivery, "nack", pika.spec.Basic.Nack(delivery.delivery_tag, multiple, requeue))

    def reject(self, delivery: Delivery, *, requeue: bool = True) -> None:
        self._settle(delivery, "reject", pika.spec.Basic.Reject(delivery.delivery_tag, requeue))

    def wait(self, timeout: float) -> None:
        with self._lock:
            try:
                self._ensure()
                self._pump(lambda: self._lock.wanted, timeout)
            except CONNECTION_ERRORS as exc:
                self._drop(ConnectionLost(f"{self._endpoint.url}: connection lost while waiting: {exc!r}"))

    # ------------------------------------------------------------------ admin

    def _control(self, what: str, call: Callable[[Any], Any]) -> Any:
        with self._lock:
            return self._guarded(what, lambda: call(self._open("_ctl").channel))

    def message_count(self, queue: str) -> int:
        """Ready messages in a queue (a passive `queue.declare`)."""
        frame = self._control(f"count {queue!r}", lambda ch: ch.queue_declare(queue, passive=True))
        return int(frame.method.message_count)

    def purge(self, queue: str) -> int:
        frame = self._control(f"purge {queue!r}", lambda ch: ch.queue_purge(queue))
        return int(frame.method.message_count)

    def delete_queue(self, queue: str) -> None:
        self._control(f"delete queue {queue!r}", lambda ch: ch.queue_delete(queue))
        with self._lock:
            self._forget_queue(queue)

    def _forget_queue(self, queue: str) -> None:
        """A deleted queue (here or by someone else) is not declared again after a reconnect."""
        self._queues.pop(queue, None)
        for b in [b for b in self._bindings if b.destination_type == "queue" and b.destination == queue]:
            del self._bindings[b]

    def delete_exchange(self, exchange: str) -> None:
        self._control(f"delete exchange {exchange!r}", lambda ch: ch.exchange_delete(exchange))
        with self._lock:
            self._exchanges.pop(exchange, None)
            for b in list(self._bindings):
                if b.source == exchange or (b.destination_type == "exchange" and b.destination == exchange):
                    del self._bindings[b]

    def close(self) -> None:
        """Close the connection. Unanswered publications settle UNCONFIRMED: flush first."""
        with self._lock:
            if self._closed:
                return
            self._resend = False
            error = ConnectionLost(f"{self.url}: transport closed before the confirm")
            self._drop(error)
            # Waiting to be sent again after a drop: they never will be now.
            self._tracker.lose(self._to_resend, error)
            self._to_resend = []
            self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<RabbitTransport {self.url}>"


def _nothing() -> None:
    """Run by the I/O loop after `_wake`: waking it up was the point."""
