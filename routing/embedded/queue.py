"""One queue of the embedded broker: a FIFO of ready messages and its consumers.

Follows RabbitMQ (checked on 3.10.8 and 4.0.5; tests/test_embedded_queue_reference.py): only
ready messages count toward `x-max-length`/`x-max-length-bytes`, and a requeue into a full
`drop-head` queue drops from the head; TTL is checked at the head only, also when a get or a
requeue uncovers a new head; a fresh message goes straight to a consumer with credit (so even a
TTL of 0 reaches a waiting consumer); a classic queue puts a requeued message back at its
original position. A quorum queue (`rabbit_fifo`) counts every return against
`x-delivery-limit` and keeps returns ahead of other messages, in the order they came back;
only a nack with requeue on a queue without a delivery limit goes to the back (3.10).
`reject-publish` on a quorum queue is a soft limit: the publish that crosses the limit is
taken, and publishes are refused until the queue is back at 80% of it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Protocol

from routing.embedded.dead_lettering import DELIVERY_LIMIT, EXPIRED, MAXLEN, REJECTED, Deaths
from routing.profiles import Profile
from routing.properties import Properties
from routing.topology import Overflow, Queue, QueueType

__all__ = ["Consumer", "DeadLetter", "Message", "MessageQueue", "Schedule"]


class Message:
    """One copy of a message in one queue. Body and properties are shared, never copied."""

    __slots__ = (
        "body",
        "deaths",
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
        self.deaths: Deaths | None = None  # 4.0: its death records, kept in the message


class Consumer(Protocol):
    """What a queue needs of its consumers (`routing.embedded.channel.Subscription`)."""

    active: bool  # in the queue's rotation

    @property
    def cancelled(self) -> bool: ...
    def has_credit(self) -> bool: ...
    def deliver(self, queue: MessageQueue, msg: Message) -> None: ...
    def lose(self) -> None: ...  # cancelled by the broker: its queue was deleted


DeadLetter = Callable[["MessageQueue", Message, str], None]
Schedule = Callable[["MessageQueue", float], None]


class MessageQueue:
    """A queue's state. Every method runs under the broker's lock."""

    def __init__(
        self,
        definition: Queue,
        owner: object | None,
        dead_letter: DeadLetter,
        schedule: Schedule,
        profile: Profile,
        clock: Callable[[], float],
    ) -> None:
        self.definition = definition
        self.clock = clock
        self.profile = profile
        self.name = definition.name
        self.owner = owner  # the transport that declared it exclusive
        self.quorum = definition.type is QueueType.QUORUM
        self.ttl = definition.message_ttl  # ms
        self.max_length = definition.max_length
        self.max_bytes = definition.max_length_bytes
        self.limited = self.max_length is not None or self.max_bytes is not None
        self.overflow = definition.overflow or Overflow.DROP_HEAD
        limit = definition.delivery_limit
        if self.quorum and limit is None:
            limit = profile.quorum_default_delivery_limit
        if limit is not None and limit < 0:  # -1: no limit on 4.0, a limit of 0 on 3.10
            limit = None if profile.quorum_delivery_limit_minus_one_is_none else 0
        self.delivery_limit = limit
        self.returns = 0  # quorum: returned messages at the head of `ready`, served first
        self.refusing = False  # quorum reject-publish: over the limit, not yet back at 80%
        self.single_active = bool(definition.single_active_consumer)
        self.ready: deque[Message] = deque()
        self.ready_bytes = 0
        self.unacked = 0
        self.consumers: list[Consumer] = []
        self.active: deque[Consumer] = deque()  # consumers with credit, in turn
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

    def publish(self, msg: Message, dead_letter: bool = False) -> bool:
        """Take a routed message; False when `reject-publish` refused it."""
        size = len(msg.body)
        if self.limited and self.overflow is not Overflow.DROP_HEAD:
            if self.quorum:
                # rabbit_fifo: refuse only once over the limit; the publish crossing it is
                # taken. The refusal is told to publishing channels: dead letters get in.
                takes = dead_letter and self.profile.quorum_reject_publish_takes_dead_letters
                if self.refusing and not takes:
                    return False
                if self._over_limit(size):
                    self.refusing = True
            elif self._would_overflow(size):
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
        if self.limited and self.overflow is Overflow.DROP_HEAD:
            self._drop_head()
        if msg.expires_at is not None and ready and ready[0] is msg:
            self.drop_expired(self.clock())
            self._reschedule()
        return True

    def _over_limit(self, size: int) -> bool:
        """Whether taking `size` more bytes puts the queue over its limit (quorum)."""
        if self.max_length is not None and len(self.ready) + 1 > self.max_length:
            return True
        return self.max_bytes is not None and self.ready_bytes + size > self.max_bytes

    def _below_low_limit(self) -> None:
        """A refusing quorum queue takes publishes again at 80% of its limit or less."""
        if not self.refusing:
            return
        if self.max_length is not None and len(self.ready) > int(self.max_length * 0.8):
            return
        if self.max_bytes is not None and self.ready_bytes > int(self.max_bytes * 0.8):
            return
        self.refusing = False

    def _would_overflow(self, size: int) -> bool:
        if self.max_length is not None and len(self.ready) >= self.max_length:
            return True
        return self.max_bytes is not None and self.ready_bytes + size > self.max_bytes

    def _drop_head(self) -> None:
        ready = self.ready
        dropped = []
        while ready and (
            (self.max_length is not None and len(ready) > self.max_length)
            or (self.max_bytes is not None and self.ready_bytes > self.max_bytes)
        ):
            dropped.append(self._pop())
        if self.quorum:  # rabbit_fifo emits one command's dead letters newest first
            dropped.reverse()
        for msg in dropped:
            self._dead_letter(self, msg, MAXLEN)
        self._reschedule()

    def _pop(self) -> Message:
        msg = self.ready.popleft()
        self.ready_bytes -= len(msg.body)
        if self.returns:
            self.returns -= 1
        if self.refusing:
            self._below_low_limit()
        return msg

    # ------------------------------------------------------------- delivering

    def dispatch(self) -> None:
        """Hand ready messages to consumers with credit, round-robin, skipping expired ones."""
        ready = self.ready
        active = self.active
        while active and ready:
            msg = ready[0]
            if msg.expires_at is not None and msg.expires_at <= self.clock():
                self.drop_expired(self.clock())
                continue
            self._deliver(self._pop())
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
            self.drop_expired(self.clock())
        if not ready:
            return None
        msg = self._pop()
        if ready and ready[0].expires_at is not None:  # the new head is looked at at once
            self.drop_expired(self.clock())
        self._reschedule()
        return msg

    def drop_expired(self, now: float) -> None:
        """Dead-letter expired messages at the head; RabbitMQ never looks further in."""
        ready = self.ready
        while ready:
            head = ready[0]
            if head.expires_at is None or head.expires_at > now:
                break
            self._pop()
            self._dead_letter(self, head, EXPIRED)

    def _reschedule(self) -> None:
        ready = self.ready
        if ready:
            deadline = ready[0].expires_at
            if deadline is not None and (self.scheduled is None or deadline < self.scheduled):
                self.scheduled = deadline
                self._schedule(self, deadline)

    # ------------------------------------------------------------- returning

    def requeue(self, msgs: Iterable[Message], *, returned: bool) -> None:
        """Messages given back unacked: by a nack or reject with requeue, or `returned` by a
        closed channel or cancelled consumer. Then what overflows `drop-head` is dropped and an
        expired head is dead-lettered, as RabbitMQ does at once."""
        if self.deleted:
            return
        ready = self.ready
        if self.quorum:
            limit = self.delivery_limit
            to_head = returned or limit is not None or not self.profile.quorum_requeue_to_back
            for msg in msgs:
                msg.delivery_count += 1
                msg.redelivered = True
                if limit is not None and msg.delivery_count > limit:
                    self._dead_letter(self, msg, DELIVERY_LIMIT)
                    continue
                if to_head:
                    ready.insert(self.returns, msg)
                    self.returns += 1
                else:
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
        if self.limited and self.overflow is Overflow.DROP_HEAD:
            if self.quorum:  # rabbit_fifo hands returns to consumers with credit first
                self.dispatch()
            self._drop_head()
        if ready and ready[0].expires_at is not None:
            self.drop_expired(self.clock())
        self._reschedule()

    def reject(self, msg: Message) -> None:
        """Nack/reject without requeue."""
        if not self.deleted:
            self._dead_letter(self, msg, REJECTED)

    # -------------------------------------------------------------- consumers

    def add_consumer(self, sub: Consumer) -> None:
        self.consumers.append(sub)
        self.had_consumers = True
        self.activate(sub)

    def activate(self, sub: Consumer) -> None:
        """Put a consumer with credit in the rotation (single-active: only the first one)."""
        if sub.active or sub.cancelled or not sub.has_credit():
            return
        if self.single_active and self.consumers and self.consumers[0] is not sub:
            return
        sub.active = True
        self.active.append(sub)

    def remove_consumer(self, sub: Consumer) -> None:
        if sub in self.consumers:
            self.consumers.remove(sub)
        if sub.active:
            sub.active = False
            self.active.remove(sub)
        if self.single_active and self.consumers:
            self.activate(self.consumers[0])

    def delete(self) -> None:
        """The queue is deleted: the broker cancels its consumers."""
        self.deleted = True
        for sub in list(self.consumers):
            sub.lose()
            self.remove_consumer(sub)

    # -------------------------------------------------------------- x-expires

    def touch(self) -> None:
        """`basic.get`, a redeclare or a cancelled last consumer: the queue counts as used now."""
        if self.expires is None:
            return
        self.unused_since = None if self.consumers else self.clock()
        if self.unused_since is not None and self.unused_deadline is None:
            self.unused_deadline = self.unused_since + self.expires / 1000
            self._schedule(self, self.unused_deadline)

    def unused_until(self, now: float) -> bool:
        """At its `x-expires` deadline: whether the queue went unused all that time (the broker
        then deletes it). Used since it was scheduled, it is looked at again later."""
        assert self.expires is not None
        if self.consumers or self.unused_since is None:
            return False
        due = self.unused_since + self.expires / 1000
        if due <= now:
            return True
        self.unused_deadline = due
        self._schedule(self, due)
        return False

    def purge(self) -> int:
        count = len(self.ready)
        self.ready.clear()
        self.ready_bytes = 0
        self.returns = 0
        if self.refusing:
            self._below_low_limit()
        return count


def _seq(msg: Message) -> int:
    return msg.seq
