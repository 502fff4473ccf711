"""Channels and consumers of the embedded broker: delivery tags, unacked deliveries, credit.

Each consumer gets a channel of its own and each transport one more for `basic.get`, so
delivery tags count from 1 per channel and `multiple` acks stay within one channel, as with
one pika channel per consumer.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import replace

from routing._frozen import FrozenDict
from routing.embedded.queue import Message, MessageQueue
from routing.errors import PreconditionFailed
from routing.transport.base import Delivery

__all__ = ["ChannelState", "Subscription", "Unacked", "settle"]

Unacked = tuple[MessageQueue, Message, "Subscription | None"]


class ChannelState:
    """A channel as the embedded broker keeps it (what `rabbit_channel` tracks): the delivery
    tags it handed out and the deliveries not yet settled. Not a client's channel object
    (the RabbitMQ transport's `ChannelHandle` wraps one of pika's)."""

    __slots__ = ("closed", "next_tag", "owner", "unacked")

    def __init__(self, owner: object) -> None:
        self.owner = owner
        self.next_tag = 0
        self.unacked: dict[int, Unacked] = {}
        self.closed = False  # its unacked deliveries went back; settling them does nothing

    def deliver(self, queue: MessageQueue, msg: Message, sub: Subscription | None) -> Delivery:
        self.next_tag += 1
        tag = self.next_tag
        self.unacked[tag] = (queue, msg, sub)
        queue.unacked += 1
        properties = msg.properties
        if queue.quorum and (
            msg.delivery_count or (sub is None and queue.profile.quorum_get_delivery_count_always)
        ):
            # Quorum queues add the count to redeliveries (3.10: to every basic.get too).
            headers = FrozenDict({**properties.headers, "x-delivery-count": msg.delivery_count})
            properties = replace(properties, headers=headers)
        return Delivery(
            msg.body, properties, msg.exchange, msg.routing_key, queue.name, tag, msg.redelivered, self
        )

    def take(self, tag: int, multiple: bool) -> list[Unacked]:
        """Remove and return the deliveries a settle covers; an unknown tag is a 406."""
        unacked = self.unacked
        if not multiple:
            entry = unacked.pop(tag, None)
            if entry is None:
                raise PreconditionFailed(406, f"PRECONDITION_FAILED - unknown delivery tag {tag}")
            return [entry]
        if tag == 0:  # AMQP: multiple with tag 0 means everything outstanding
            return self.take_all()
        if tag not in unacked:
            raise PreconditionFailed(406, f"PRECONDITION_FAILED - unknown delivery tag {tag}")
        covered = []
        for t in list(unacked):  # dicts keep insertion order, and tags only grow
            if t > tag:
                break
            covered.append(unacked.pop(t))
        return covered

    def take_all(self) -> list[Unacked]:
        entries = list(self.unacked.values())
        self.unacked.clear()
        return entries


class Subscription:
    """One consumer: its credit (`prefetch`, 0 = unlimited) and the deliveries waiting for
    its reader. Waiting happens on a Condition of the broker's lock."""

    __slots__ = (
        "active",
        "bonus",
        "buffer",
        "cancelled",
        "channel",
        "cond",
        "in_flight",
        "lost",
        "prefetch",
        "queue",
    )

    def __init__(
        self, queue: MessageQueue, channel: ChannelState, prefetch: int, lock: threading.Lock
    ) -> None:
        self.queue = queue
        self.channel = channel
        self.prefetch = prefetch
        self.in_flight = 0
        self.buffer: deque[Delivery] = deque()
        self.cond = threading.Condition(lock)
        self.cancelled = False
        self.lost = False  # cancelled by the broker: its queue was deleted
        self.active = False  # in the queue's rotation
        self.bonus = 0  # credit beyond prefetch (3.10's delivery-limit credit quirk)

    def has_credit(self) -> bool:
        return not self.prefetch or self.in_flight < self.prefetch + self.bonus

    def lose(self) -> None:
        """Cancelled by the broker (its queue was deleted): the reader wakes to an error."""
        self.cancelled = self.lost = True
        self.cond.notify_all()

    def deliver(self, queue: MessageQueue, msg: Message) -> None:
        self.in_flight += 1
        self.buffer.append(self.channel.deliver(queue, msg, self))
        self.cond.notify()


def settle(entries: list[Unacked], requeue: bool | None, returned: bool = False) -> None:
    """Settle deliveries taken from their channel: ack (`requeue` None), give back to their
    queue (`returned` when a channel closed or a consumer was cancelled), or reject; then
    the queues they came from hand out what their consumers have credit for."""
    touched: dict[MessageQueue, list[Message]] = {}
    for q, msg, sub in entries:
        q.unacked -= 1
        if sub is not None:
            sub.in_flight -= 1
            if (
                requeue
                and q.quorum
                and q.delivery_limit is not None
                and msg.delivery_count >= q.delivery_limit
                and q.profile.quorum_delivery_limit_credit_leak
            ):
                sub.bonus += 1  # 3.10's rabbit_fifo credits the return and the discard
            q.activate(sub)
        touched.setdefault(q, [])
        if requeue is None:
            continue
        if requeue:
            touched[q].append(msg)
        else:
            q.reject(msg)
    for q, msgs in touched.items():
        if msgs:
            q.requeue(msgs, returned=returned)
        q.dispatch()
