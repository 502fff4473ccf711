"""Delivery on both brokers: fair dispatch with prefetch 1, requeue and redelivery, and
exclusive queues locked to their connection."""

from __future__ import annotations

import pytest

from routing.errors import ChannelClosed, DeclareConflicts
from routing.topology import Queue, Topology

from .conftest import WAIT, Harness


def test_fair_dispatch_with_prefetch_one_between_two_consumers(harness: Harness) -> None:
    q = Queue(harness.name("work"))
    harness.declare(q)
    first = harness.t.consume(q.name, prefetch=1)
    second = harness.t.consume(q.name, prefetch=1)
    harness.publish_all("", [(q.name, b"m%d" % i) for i in range(1, 5)])
    a, b = first.get(timeout=WAIT), second.get(timeout=WAIT)
    assert a is not None and b is not None
    assert {a.body, b.body} == {b"m1", b"m2"}  # one each
    # Neither gets another while its one delivery is unacked.
    assert first.get(timeout=0.2) is None and second.get(timeout=0.2) is None
    harness.t.ack(a)
    a2 = first.get(timeout=WAIT)
    assert a2 is not None and a2.body == b"m3"
    assert second.get(timeout=0.2) is None  # still holding its first
    harness.t.ack(b)
    b2 = second.get(timeout=WAIT)
    assert b2 is not None and b2.body == b"m4"
    harness.t.ack(a2)
    harness.t.ack(b2)
    first.cancel()
    second.cancel()
    assert harness.drain(q.name) == []


def test_requeued_messages_return_to_their_place_marked_redelivered(harness: Harness) -> None:
    q = Queue(harness.name("q"))
    harness.declare(q)
    harness.publish_all("", [(q.name, b"m%d" % i) for i in range(1, 5)])
    held = [harness.get(q.name) for _ in range(3)]
    assert [d.body for d in held if d] == [b"m1", b"m2", b"m3"]
    assert not any(d.redelivered for d in held if d)
    m1, m2, m3 = held
    assert m1 and m2 and m3
    harness.t.nack(m2, requeue=True)
    harness.t.reject(m1, requeue=True)
    harness.t.ack(m3)
    seen = []
    while (d := harness.get(q.name, wait=0.5)) is not None:
        harness.t.ack(d)
        seen.append((d.body, d.redelivered))
    assert seen == [(b"m1", True), (b"m2", True), (b"m4", False)]


def test_a_consumer_sees_the_redelivered_flag_after_a_requeue(harness: Harness) -> None:
    q = Queue(harness.name("q"))
    harness.declare(q)
    harness.publish_all("", [(q.name, b"job")])
    consumer = harness.t.consume(q.name, prefetch=1)
    first = consumer.get(timeout=WAIT)
    assert first is not None and not first.redelivered
    harness.t.nack(first, requeue=True)
    again = consumer.get(timeout=WAIT)
    assert again is not None and (again.body, again.redelivered) == (b"job", True)
    harness.t.ack(again)
    consumer.cancel()
    assert harness.drain(q.name) == []


def test_exclusive_queue_is_locked_for_another_connection(harness: Harness) -> None:
    q = Queue(harness.name("mine"), exclusive=True, auto_delete=True, durable=False)
    harness.declare(q)
    other = harness.connect()
    with pytest.raises(ChannelClosed) as info:
        other.get(q.name)
    assert info.value.code == 405
    assert "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue" in info.value.text
    with pytest.raises(DeclareConflicts, match=f"queue '{q.name}': 405 cannot obtain exclusive access"):
        other.declare(Topology.of(q))
    # The owner still uses it; closing the owner deletes it.
    harness.t.publish("", q.name, b"m")
    assert harness.t.flush(timeout=WAIT) == []
    assert harness.drain(q.name) == [b"m"]
    harness.t.close()
    with pytest.raises(ChannelClosed) as info:
        other.get(q.name)
    assert info.value.code == 404
