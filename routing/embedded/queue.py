"""One queue of the embedded broker: a FIFO of ready messages and its consumers.

Follows RabbitMQ 3.10 (checked on the broker here): only ready messages count toward
`x-max-length`/`x-max-length-bytes`; TTL is checked at the head only; a fresh message goes
straight to a consumer with credit (so even a TTL of 0 reaches a waiting consumer); a classic
queue puts a requeued message back at its original position, while a quorum queue appends
it and counts the return against `x-delivery-limit`.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from routing.embedded.deadletter import DELIVERY_LIMIT, EXPIRED, MAXLEN, REJECTED
from routing.properties import Properties
from routing.topology import Overflow, Queue, QueueType

if TYPE_CHECKING:
    from routing.embedded.channel import Subscription

_monotonic = time.monotonic


class Message:
    """One copy of a message in one queue. Body and properties are shared, never copied."""

    __slots__ = (
        "body",
        "delivery_count",
        "exchange",
        "expires_at",
        "properties",
        "redelivered",
        "routing_key",
        "routing_keys",
        "seq",
    )

    def __init__(
        self,
        body: bytes,
        properties: Properties,
        exchange: str,
        routing_key: str,
        routing_keys: list[str] | None,
        expires_at: float | None,
    ) -> None:
        self.body = body
        self.properties = properties
        self.exchange = exchange
        self.routing_key = routing_key
        # Every key it was published with (CC and BCC too), for dead-letter routing;
        # None when that is just `routing_key`.
        self.routing_keys = routing_keys
        self.expires_at = expires_at  # time.monotonic() deadline, or None
        self.seq = 0
        self.redelivered = False
        self.delivery_count = 0  # returns so far; quorum queues only


DeadLetter = Callable[["MessageQueue", Message, str], None]
Schedule = Callable[["MessageQueue", float], None]


class MessageQueue:
    """A queue's state. Every method runs under the broker's lock."""

    def __init__(
        self, definition: Queue, owner: object | None, dead_letter: DeadLetter, schedule: Schedule
    ) -> None:
        self.definition = definition
        self.name = definition.name
        self.owner = owner  # the transport that declared it exclusive
        self.quorum = definition.type is QueueType.QUORUM
        self.ttl = definition.message_ttl  # ms
        self.max_length = definition.max_length
        self.max_bytes = definition.max_length_bytes
        self.limited = self.max_length is not None or self.max_bytes is not None
        self.overflow = definition.overflow or Overflow.DROP_HEAD
        self.delivery_limit = definition.delivery_limit
        self.single_active = bool(definition.single_active_consumer)
        self.ready: deque[Message] = deque()
        self.ready_bytes = 0
        self.unacked = 0
        self.consumers: list[Subscription] = []
        self.active: deque[Subscription] = deque()  # consumers with credit, in turn
        self.had_consumers = False
        self.deleted = False
        self.scheduled: float | None = None  # earliest deadline in the broker's heap
        self.expires = definition.expires  # ms unused before the queue is deleted
        self.unused_since: float | None = None
        self.unused_deadline: float | None = None
        self._seq = 0
        self._dead_letter = dead_letter
        self._schedule = schedule

    # ------------------------------------------------------------ publishing

    def publish(self, msg: Message) -> bool:
        """Take a routed message; False when `reject-publish` refused it."""
        size = len(msg.body)
        if self.limited and self.overflow is not Overflow.DROP_HEAD and self._would_overflow(size):
            if self.overflow is Overflow.REJECT_PUBLISH_DLX:
                self._dead_letter(self, msg, MAXLEN)
            return False
        self._seq += 1
        msg.seq = self._seq
        ready = self.ready
        if not ready and self.active:
            self._deliver(msg)
            return True
        ready.append(msg)
        self.ready_bytes += size
        if self.limited:
            self._drop_head()
        if msg.expires_at is not None and ready and ready[0] is msg:
            self.drop_expired(_monotonic())
            self._reschedule()
        return True

    def _would_overflow(self, size: int) -> bool:
        if self.max_length is not None and len(self.ready) >= self.max_length:
            return True
        return self.max_bytes is not None and self.ready_bytes + size > self.max_bytes

    def _drop_head(self) -> None:
        ready = self.ready
        while ready and (
            (self.max_length is not None and len(ready) > self.max_length)
            or (self.max_bytes is not None and self.ready_bytes > self.max_bytes)
        ):
            msg = ready.popleft()
            self.ready_bytes -= len(msg.body)
            self._dead_letter(self, msg, MAXLEN)
        self._reschedule()

    # ------------------------------------------------------------- delivering

    def dispatch(self) -> None:
        """Hand ready messages to consumers with credit, round-robin, skipping expired ones."""
        ready = self.ready
        active = self.active
        while active and ready:
            msg = ready[0]
            if msg.expires_at is not None and msg.expires_at <= _monotonic():
                self.drop_expired(_monotonic())
                continue
            ready.popleft()
            self.ready_bytes -= len(msg.body)
            self._deliver(msg)
        self._reschedule()

    def _deliver(self, msg: Message) -> None:
        sub = self.active.popleft()
        sub.deliver(self, msg)
        if sub.has_credit():
            self.active.append(sub)
        else:
            sub.active = False

    def fetch(self) -> Message | None:
        """The head for `basic.get`, or None; expired heads are dead-lettered first."""
        ready = self.ready
        if ready and ready[0].expires_at is not None:
            self.drop_expired(_monotonic())
        if not ready:
            return None
        msg = ready.popleft()
        self.ready_bytes -= len(msg.body)
        self._reschedule()
        return msg

    def drop_expired(self, now: float) -> None:
        """Dead-letter expired messages at the head; RabbitMQ never looks further in."""
        ready = self.ready
        while ready:
            head = ready[0]
            if head.expires_at is None or head.expires_at > now:
                break
            ready.popleft()
            self.ready_bytes -= len(head.body)
            self._dead_letter(self, head, EXPIRED)

    def _reschedule(self) -> None:
        ready = self.ready
        if ready:
            deadline = ready[0].expires_at
            if deadline is not None and (self.scheduled is None or deadline < self.scheduled):
                self.scheduled = deadline
                self._schedule(self, deadline)

    # ------------------------------------------------------------- returning

    def requeue(self, msgs: Iterable[Message]) -> None:
        """Messages given back unacked (nack/reject with requeue, a closed channel)."""
        if self.deleted:
            return
        ready = self.ready
        if self.quorum:
            # rabbit_fifo (3.10) appends returns and counts them; past the limit, dead-letter.
            limit = self.delivery_limit
            for msg in msgs:
                msg.delivery_count += 1
                msg.redelivered = True
                if limit is not None and msg.delivery_count > limit:
                    self._dead_letter(self, msg, DELIVERY_LIMIT)
                    continue
                ready.append(msg)
                self.ready_bytes += len(msg.body)
        else:
            for msg in sorted(msgs, key=_seq, reverse=True):
                msg.redelivered = True
                self.ready_bytes += len(msg.body)
                if not ready or msg.seq < ready[0].seq:
                    ready.appendleft(msg)
                    continue
                for i, other in enumerate(ready):  # rare: behind earlier requeued messages
                    if other.seq > msg.seq:
                        ready.insert(i, msg)
                        break
                else:
                    ready.append(msg)
        self._reschedule()

    def reject(self, msg: Message) -> None:
        """Nack/reject without requeue."""
        if not self.deleted:
            self._dead_letter(self, msg, REJECTED)

    # -------------------------------------------------------------- consumers

    def add_consumer(self, sub: Subscription) -> None:
        self.consumers.append(sub)
        self.had_consumers = True
        self.activate(sub)

    def activate(self, sub: Subscription) -> None:
        """Put a consumer with credit in the rotation (single-active: only the first one)."""
        if sub.active or sub.cancelled or not sub.has_credit():
            return
        if self.single_active and self.consumers and self.consumers[0] is not sub:
            return
        sub.active = True
        self.active.append(sub)

    def remove_consumer(self, sub: Subscription) -> None:
        if sub in self.consumers:
            self.consumers.remove(sub)
        if sub.active:
            sub.active = False
            self.active.remove(sub)
        if self.single_active and self.consumers:
            self.activate(self.consumers[0])

    def purge(self) -> int:
        count = len(self.ready)
        self.ready.clear()
        self.ready_bytes = 0
        return count


def _seq(msg: Message) -> int:
    return msg.seq
