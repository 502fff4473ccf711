"""Delivery on both brokers: fair dispatch with prefetch 1, requeue and redelivery, and
exclusive queues locked to their connection."""

from __future__ import annotations

import pytest

from routing.errors import ChannelClosed, DeclareConflicts
from routing.topology import Queue, Topology

from .conftest import WAIT, Harness


def test_fair_dispatch_with_prefetch_one_between_two_consumers(broker: Harness) -> None:
    q = Queue(broker.name("work"))
    broker.declare(q)
    first = broker.t.consume(q.name, prefetch=1)
    second = broker.t.consume(q.name, prefetch=1)
    broker.publish_all("", [(q.name, b"m%d" % i) for i in range(1, 5)])
    a, b = first.get(timeout=WAIT), second.get(timeout=WAIT)
    assert a is not None and b is not None
    assert {a.body, b.body} == {b"m1", b"m2"}  # one each
    # Neither gets another while its one delivery is unacked.
    assert first.get(timeout=0.2) is None and second.get(timeout=0.2) is None
    broker.t.ack(a)
    a2 = first.get(timeout=WAIT)
    assert a2 is not None and a2.body == b"m3"
    assert second.get(timeout=0.2) is None  # still holding its first
    broker.t.ack(b)
    b2 = second.get(timeout=WAIT)
    assert b2 is not None and b2.body == b"m4"
    broker.t.ack(a2)
    broker.t.ack(b2)
    first.cancel()
    second.cancel()
    assert broker.drain(q.name) == []


def test_requeued_messages_return_to_their_place_marked_redelivered(broker: Harness) -> None:
    q = Queue(broker.name("q"))
    broker.declare(q)
    broker.publish_all("", [(q.name, b"m%d" % i) for i in range(1, 5)])
    held = [broker.get(q.name) for _ in range(3)]
    assert [d.body for d in held if d] == [b"m1", b"m2", b"m3"]
    assert not any(d.redelivered for d in held if d)
    m1, m2, m3 = held
    assert m1 and m2 and m3
    broker.t.nack(m2, requeue=True)
    broker.t.reject(m1, requeue=True)
    broker.t.ack(m3)
    seen = []
    while (d := broker.get(q.name, wait=0.5)) is not None:
        broker.t.ack(d)
        seen.append((d.body, d.redelivered))
    assert seen == [(b"m1", True), (b"m2", True), (b"m4", False)]


def test_a_consumer_sees_the_redelivered_flag_after_a_requeue(broker: Harness) -> None:
    q = Queue(broker.name("q"))
    broker.declare(q)
    broker.publish_all("", [(q.name, b"job")])
    consumer = broker.t.consume(q.name, prefetch=1)
    first = consumer.get(timeout=WAIT)
    assert first is not None and not first.redelivered
    broker.t.nack(first, requeue=True)
    again = consumer.get(timeout=WAIT)
    assert again is not None and (again.body, again.redelivered) == (b"job", True)
    broker.t.ack(again)
    consumer.cancel()
    assert broker.drain(q.name) == []


def test_exclusive_queue_is_locked_for_another_connection(broker: Harness) -> None:
    q = Queue(broker.name("mine"), exclusive=True, auto_delete=True, durable=False)
    broker.declare(q)
    other = broker.connect()
    with pytest.raises(ChannelClosed) as info:
        other.get(q.name)
    assert info.value.code == 405
    assert "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue" in info.value.text
    with pytest.raises(DeclareConflicts, match=f"queue '{q.name}': 405 cannot obtain exclusive access"):
        other.declare(Topology.of(q))
    # The owner still uses it; closing the owner deletes it.
    broker.t.publish("", q.name, b"m")
    assert broker.t.flush(timeout=WAIT) == []
    assert broker.drain(q.name) == [b"m"]
    broker.t.close()
    with pytest.raises(ChannelClosed) as info:
        other.get(q.name)
    assert info.value.code == 404
