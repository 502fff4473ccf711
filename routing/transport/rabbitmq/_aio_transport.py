"""`AsyncRabbitTransport`: the `AsyncTransport` protocol over one `AsyncConnection`.

The twin of `_transport` for an event loop. Publishing encodes with `encode_properties`
(the last value's bytes kept), tracks with the `ConfirmTracker` (whose `AsyncPublication`s
wake their awaiters as they settle), and writes the frames straight to the socket
(`FrameWriter`): up to `POLL_EVERY` messages in one write, sent when the loop next has a
turn at the latest. It yields to the loop only when the window is full, and every
`POLL_EVERY` publishes so confirms are read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from loguru import logger

from routing.errors import BrokerError, ChannelClosed, ConnectionLost, DeclareConflicts
from routing.properties import Properties
from routing.topology import Binding, Topology
from routing.transport._declare import declare_topology_async, redeclare_async
from routing.transport.aio.base import AsyncPublication, AsyncTransportBase
from routing.transport.base import DeclareReport, Delivery, Publication, queue_name
from routing.transport.rabbitmq import _pika
from routing.transport.rabbitmq._aio_connection import AsyncChannel, AsyncConnection, Waker
from routing.transport.rabbitmq._aio_consumer import AsyncRabbitConsumer, settle
from routing.transport.rabbitmq._confirms import ConfirmTracker, Pending, Returned
from routing.transport.rabbitmq._consumer import delivery
from routing.transport.rabbitmq._declare_ops import AsyncChannelOps, ManagementBindings
from routing.transport.rabbitmq._declared import Declared
from routing.transport.rabbitmq._encode import ACK, NACK, REJECT, encode_properties
from routing.transport.rabbitmq._facts import ConnectionFacts
from routing.transport.rabbitmq._pika import FrameWriter
from routing.transport.rabbitmq._transport import POLL_EVERY
from routing.transport.rabbitmq._url import parse_urls


class AsyncRabbitTransport(ConnectionFacts[AsyncConnection], AsyncTransportBase):
    """The `AsyncTransport` for RabbitMQ: `await AsyncRabbitTransport.open(url)` (or a list of
    URLs, tried in order). The options are `RabbitTransport`'s: `window` publications may
    await their confirm; `resend` publishes again, on the new connection, what was
    unconfirmed when one dropped; `reconnect_timeout` bounds the reconnecting; `name` shows
    in the management UI."""

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
        self._tracker = ConfirmTracker(window, AsyncPublication)
        self._to_resend: list[Pending] = []
        self._declared = Declared()
        self._consumers: list[AsyncRabbitConsumer] = []
        self._pub: AsyncChannel | None = None  # confirm mode, for publish
        self._writer: FrameWriter | None = None  # writes to `_pub`
        # Frames of publishes not yet written: one socket write for up to POLL_EVERY of them, at
        # the latest when the loop next has a turn. They belong to `_writer`'s channel.
        self._outbox: list[bytes] = []
        self._ctl: AsyncChannel | None = None  # declare, purge, delete
        self._getter: AsyncChannel | None = None  # basic.get, and the acks of what it got
        self._waker = Waker()  # confirms, a closed publishing channel, a drop
        self._recovery: asyncio.Task[None] | None = None  # reconnecting to send again what waits
        self._pub_lock = asyncio.Lock()
        self._get_lock = asyncio.Lock()  # pika takes one basic.get at a time per channel
        self._closed = False
        self._last: tuple[Properties | None, bytes] = (None, b"")
        self._conn = AsyncConnection(
            endpoints,
            name=name,
            reconnect_timeout=reconnect_timeout,
            restore=self._restore,
            dropped=self._dropped,
        )

    @classmethod
    async def open(
        cls,
        url: str | Sequence[str],
        *,
        window: int = 1000,
        resend: bool = False,
        reconnect_timeout: float = 60.0,
        name: str | None = None,
    ) -> AsyncRabbitTransport:
        """Connect (to the first of the URLs that answers); `ConnectionFailed` when none does."""
        transport = cls(url, window=window, resend=resend, reconnect_timeout=reconnect_timeout, name=name)
        await transport._conn.open()
        return transport

    # ------------------------------------------------------------ connection

    async def _restore(self) -> None:
        """After a reconnect: declare again, resume the consumers, send again what waits."""
        d = self._declared
        ops = self._ops()
        for line in await redeclare_async(d.exchanges.values(), d.queues.values(), d.bindings, ops):
            logger.bind(url=self.url).error("declaring again after a reconnect: {}", line)
        for consumer in list(self._consumers):
            await consumer.resume()
        if self._to_resend:
            await self._open_publisher()
            writer = self._writer
            assert writer is not None  # set with `_pub`
            while self._to_resend:
                p = self._to_resend.pop(0)
                self._tracker.resent(p)
                pub = p.publication
                writer.publish(pub.exchange, pub.routing_key, p.body, p.properties, p.mandatory)

    def _dropped(self, error: ConnectionLost) -> None:
        """The connection is gone: its channels, and the confirms it will never send."""
        self._pub = self._ctl = self._getter = None
        self._outbox.clear()  # their publications are lost or sent again with the others
        for consumer in self._consumers:
            consumer.connection_lost()
        if self._resend:
            self._to_resend[:0] = self._tracker.take_pending()
            if self._to_resend and self._recovery is None and not self._closed:
                # Someone may only be awaiting a publication: reconnect without waiting for a call.
                self._recovery = asyncio.get_running_loop().create_task(self._recover())
        else:
            self._tracker.lose_all(error)
        self._waker.wake()

    async def _recover(self) -> None:
        """Reconnect (and so send again what waits); if that fails within `reconnect_timeout`,
        what waits settles UNCONFIRMED with the reason."""
        try:
            await self._publisher()
        except BrokerError as exc:
            error = exc if isinstance(exc, ConnectionLost) else ConnectionLost(str(exc))
            self._tracker.lose(self._to_resend, error)
            self._to_resend = []
            self._waker.wake()
        finally:
            self._recovery = None

    async def _open(self, attr: str) -> AsyncChannel:
        chan: AsyncChannel | None = getattr(self, attr)
        if chan is None or not chan.alive:
            chan = await self._conn.channel()
            setattr(self, attr, chan)
        return chan

    async def _control(self, what: str, call: Callable[[AsyncChannel], Awaitable[Any]]) -> Any:
        async def run() -> Any:
            return await call(await self._open("_ctl"))

        return await self._conn.guarded(what, run)

    # -------------------------------------------------------------- declare

    def _ops(self) -> AsyncChannelOps:
        return AsyncChannelOps(self._control)

    async def declare(self, topology: Topology) -> DeclareReport:
        """Declare idempotently; report what was created and what already existed. Every
        conflict is reported (`DeclareConflicts`, with the report), not only the first."""
        await self._conn.live()
        report = await declare_topology_async(
            topology, self._ops().reading(ManagementBindings(self.endpoint))
        )
        self._declared.add(topology)
        if report.conflicts:
            raise DeclareConflicts(report.conflicts, report)
        return report

    async def unbind(self, binding: Binding) -> None:
        """Remove a binding; a missing one is fine. It is not declared again after a reconnect."""
        await self._control(f"unbind {binding.describe()}", lambda ch: ch.unbind(binding))
        self._declared.unbound(binding)

    # -------------------------------------------------------------- publish

    async def _publisher(self) -> AsyncChannel:
        async with self._pub_lock:
            chan = self._pub
            if chan is not None and chan.alive:
                return chan
            await self._conn.live()
            if self._pub is not None and self._pub.alive:
                return self._pub  # `_restore` opened it to send again what was unconfirmed
            return await self._open_publisher()

    async def _open_publisher(self) -> AsyncChannel:
        chan = await self._conn.channel()
        with self._conn.errors("publish"):
            await chan.call(
                lambda done: _pika.confirm(chan.channel, self._on_ack, self._on_nack, self._on_return, done)
            )
        chan.on_close = self._publisher_closed
        self._writer = FrameWriter(chan.channel)
        self._tracker.restart()
        self._pub = chan
        return chan

    def _send_outbox(self) -> None:
        """Write the publishes waiting in the outbox, in one go (what the socket does not
        take, the loop writes)."""
        outbox = self._outbox
        if outbox and self._writer is not None:
            self._writer.send(outbox[0] if len(outbox) == 1 else b"".join(outbox))
        outbox.clear()

    def _publisher_closed(self, chan: AsyncChannel) -> None:
        """The broker closed the publishing channel (say 404 for a publish to an unknown
        exchange): its unanswered publications settle UNCONFIRMED with that error now. (A
        dropped connection is `_dropped`'s; a closed transport is `close`'s.)"""
        if chan is not self._pub:
            return
        refused = self._conn.refusal(chan, "publish")
        if refused is None and not self._conn.is_open:
            return
        self._pub = None
        self._outbox.clear()  # for a channel that is gone: they settle with the others
        self._tracker.lose_all(refused or ChannelClosed(0, f"publishing channel closed: {chan.reason!r}"))
        self._waker.wake()

    def _on_ack(self, tag: int, multiple: bool) -> None:
        self._tracker.on_ack(tag, multiple)
        self._waker.wake()

    def _on_nack(self, tag: int, multiple: bool) -> None:
        self._tracker.on_nack(tag, multiple)
        self._waker.wake()

    def _on_return(
        self, code: int, text: str, exchange: str, routing_key: str, _properties: Properties, body: bytes
    ) -> None:
        self._tracker.on_return(Returned(exchange, routing_key, body, code, text))

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: Properties | None = None,
        *,
        mandatory: bool = False,
    ) -> AsyncPublication:
        """Send with a confirm to come; returns at once unless `window` publications are in
        flight (then waits for room). `await` the publication for its outcome."""
        last, props = self._last
        if properties is None or properties is not last:  # else: one value reused
            props = encode_properties(properties)
            self._last = (properties, props)
        tracker = self._tracker
        while True:
            chan = self._pub
            if chan is None or not chan.alive:
                await self._publisher()
                continue
            if tracker.full:
                self._send_outbox()
                await self._waker.wait()
                continue
            writer = self._writer
            assert writer is not None  # set with `_pub`
            # PropertyError here, before the publication is counted or a byte is sent.
            frames = writer.frames(exchange, routing_key, body, props, mandatory)
            publication = tracker.sent(exchange, routing_key, body, props, mandatory)
            outbox = self._outbox
            outbox.append(frames)
            if len(outbox) == 1:
                asyncio.get_running_loop().call_soon(self._send_outbox)
            elif len(outbox) >= POLL_EVERY:
                self._send_outbox()
                await asyncio.sleep(0)  # the loop reads confirms, returns, a channel close
            return publication  # type: ignore[return-value]  # the tracker makes AsyncPublications

    async def flush(self, timeout: float | None = None) -> list[Publication]:
        """Wait for every publication's answer; return those not confirmed since the last
        flush. After `timeout` the still-unanswered ones are included, unsettled."""
        deadline = None if timeout is None else time.monotonic() + timeout
        tracker = self._tracker
        while len(tracker) or self._to_resend:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return tracker.take_failures() + tracker.unsettled()
            if self._pub is None or not self._pub.alive:
                await self._publisher()  # reconnects; `_restore` sends again what waits
                continue
            self._send_outbox()
            await self._waker.wait(remaining)
        return tracker.take_failures()

    # -------------------------------------------------------- consume and get

    def consume(self, queue: str, *, prefetch: int = 1) -> AsyncRabbitConsumer:
        """A consumer of `queue`; it starts at its first `get` (or `start()`, `async with`)."""
        if self._closed:
            raise BrokerError(f"{self.url}: the transport is closed")
        return AsyncRabbitConsumer(
            self._conn,
            queue_name(queue),
            prefetch,
            on_start=self._consumers.append,
            on_deleted=self._declared.queue_deleted,
            on_cancel=self._consumer_cancelled,
        )

    def _consumer_cancelled(self, consumer: AsyncRabbitConsumer) -> None:
        if consumer in self._consumers:
            self._consumers.remove(consumer)

    async def get(self, queue: str) -> Delivery | None:
        queue = queue_name(queue)

        async def fetch() -> Delivery | None:
            chan = await self._open("_getter")
            answer = await chan.basic_get(queue)
            if answer is None:
                return None
            method, props, body = answer
            return delivery(method, props, body, queue, chan)

        async with self._get_lock:
            return await self._conn.guarded(f"get from {queue!r}", fetch)

    async def ack(self, delivery: Delivery, *, multiple: bool = False) -> None:
        settle(self._conn, delivery, "ack", ACK, multiple)

    async def nack(self, delivery: Delivery, *, requeue: bool = True, multiple: bool = False) -> None:
        settle(self._conn, delivery, "nack", NACK, multiple | requeue << 1)

    async def reject(self, delivery: Delivery, *, requeue: bool = True) -> None:
        settle(self._conn, delivery, "reject", REJECT, requeue)

    # ------------------------------------------------------------------ admin

    async def message_count(self, queue: str) -> int:
        """Ready messages in a queue (a passive `queue.declare`)."""
        queue = queue_name(queue)
        frame = await self._control(f"count {queue!r}", lambda ch: ch.queue_declare(queue, passive=True))
        return int(frame.method.message_count)

    async def purge(self, queue: str) -> int:
        queue = queue_name(queue)
        frame = await self._control(f"purge {queue!r}", lambda ch: ch.queue_purge(queue))
        return int(frame.method.message_count)

    async def delete_queue(self, queue: str) -> None:
        queue = queue_name(queue)
        await self._control(f"delete queue {queue!r}", lambda ch: ch.queue_delete(queue))
        self._declared.queue_deleted(queue)

    async def delete_exchange(self, exchange: str) -> None:
        await self._control(f"delete exchange {exchange!r}", lambda ch: ch.exchange_delete(exchange))
        self._declared.exchange_deleted(exchange)

    async def close(self) -> None:
        """Close the connection. Unanswered publications settle UNCONFIRMED: flush first."""
        if self._closed:
            return
        self._closed = True
        self._resend = False
        error = ConnectionLost(f"{self.url}: transport closed before the confirm")
        if self._recovery is not None:
            self._recovery.cancel()
        self._send_outbox()  # unconfirmed, but sent
        # First, so a consumer waiting in `get` ends (None) instead of seeing a dropped connection.
        consumers, self._consumers = self._consumers, []
        for consumer in consumers:
            consumer.transport_closed()
        await self._conn.close(error)
        self._tracker.lose(self._to_resend, error)  # waiting to be sent again: never now
        self._to_resend = []

    def __repr__(self) -> str:
        return f"<AsyncRabbitTransport {self.url}>"
