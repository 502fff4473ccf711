"""Queue semantics of the embedded broker: FIFO, acks, requeue, consumers, TTL, max-length.

Expected orders and counts are what RabbitMQ 3.10.8 did with the same steps (see the report
of issue 4). TTL tests run on a fake clock, so they are exact and fast.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from routing import Exchange, Queue, Topology
from routing.embedded import forget
from routing.errors import PreconditionFailed, PropertyError
from routing.transport import Delivery, Outcome, Properties
from routing.transport.memory import MemoryTransport


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(t: MemoryTransport) -> Clock:
    """The broker's clock, moved by hand: set before the test declares its queues."""
    fake = Clock()
    t.broker.clock = fake
    return fake


@pytest.fixture
def t(unique: str) -> Iterator[MemoryTransport]:
    # These cases were checked against RabbitMQ 3.10.8: the embedded broker in that release's
    # profile (4.0's differences are in tests/test_embedded_queue_reference.py, on both).
    with MemoryTransport(f"memory://{unique}?rabbitmq=3.10") as transport:
        yield transport
    forget(f"memory://{unique}")


def drain(t: MemoryTransport, queue: str) -> list[Delivery]:
    out = []
    while (d := t.get(queue)) is not None:
        t.ack(d)
        out.append(d)
    return out


def bodies(t: MemoryTransport, queue: str) -> list[bytes]:
    return [d.body for d in drain(t, queue)]


def publish(t: MemoryTransport, queue: str, *names: str, **props: object) -> None:
    for name in names:
        t.publish("", queue, name.encode(), Properties(**props) if props else None)  # type: ignore[arg-type]


def with_dlq(t: MemoryTransport, *queues: Queue) -> None:
    dlx = Exchange("dlx", "fanout")
    t.declare(Topology.of(dlx, Queue("dlq"), dlx.bind("dlq"), *queues))


def test_fifo_get_and_ack(t: MemoryTransport) -> None:
    t.declare(Topology.of(Queue("q")))
    publish(t, "q", "m1", "m2", "m3")
    assert bodies(t, "q") == [b"m1", b"m2", b"m3"]
    assert t.get("q") is None


def test_ack_unknown_or_twice_is_406(t: MemoryTransport) -> None:
    t.declare(Topology.of(Queue("q")))
    publish(t, "q", "m")
    d = t.get("q")
    assert d is not None
    t.ack(d)
    with pytest.raises(PreconditionFailed, match="unknown delivery tag 1"):
        t.ack(d)


def test_ack_multiple_covers_earlier_tags_only(t: MemoryTransport) -> None:
    t.declare(Topology.of(Queue("q")))
    publish(t, "q", "m1", "m2", "m3")
    d1, d2, d3 = (t.get("q") for _ in range(3))
    assert d2 is not None and d3 is not None
    t.ack(d2, multiple=True)
    t.nack(d3)
    assert bodies(t, "q") == [b"m3"]
    assert d1 is not None
    with pytest.raises(PreconditionFailed):
        t.ack(d1)


def test_classic_requeue_returns_to_original_position(t: MemoryTransport) -> None:
    t.declare(Topology.of(Queue("q")))
    publish(t, "q", "m1", "m2", "m3", "m4")
    d1, d2, _d3 = (t.get("q") for _ in range(3))
    assert d1 is not None and d2 is not None and not d1.redelivered
    t.nack(d2, requeue=True)
    t.reject(d1, requeue=True)
    got = drain(t, "q")
    # RabbitMQ 3.10.8, same steps: m1 (redelivered), m2 (redelivered), m4.
    assert [(d.body, d.redelivered) for d in got] == [(b"m1", True), (b"m2", True), (b"m4", False)]


def test_quorum_requeue_appends_and_counts_deliveries(t: MemoryTransport) -> None:
    t.declare(Topology.of(Queue("q", type="quorum")))
    publish(t, "q", "m1", "m2", "m3", "m4", "m5", "m6")
    d1, d2, _d3 = (t.get("q") for _ in range(3))
    assert d1 is not None and d2 is not None
    assert d1.headers == {"x-delivery-count": 0}  # 3.10 adds it to every basic.get
    t.nack(d2)
    t.nack(d1)
    got = [(d.body, d.redelivered, d.headers["x-delivery-count"]) for d in drain(t, "q")]
    assert got == [
        (b"m4", False, 0), (b"m5", False, 0), (b"m6", False, 0), (b"m2", True, 1), (b"m1", True, 1),
    ]  # fmt: skip


def test_nack_multiple_requeues_all_covered(t: MemoryTransport) -> None:
    t.declare(Topology.of(Queue("q")))
    publish(t, "q", "m1", "m2", "m3")
    _, _, d3 = (t.get("q") for _ in range(3))
    assert d3 is not None
    t.nack(d3, multiple=True, requeue=True)
    assert [(d.body, d.redelivered) for d in drain(t, "q")] == [
        (b"m1", True), (b"m2", True), (b"m3", True),
    ]  # fmt: skip


def test_reject_without_requeue_and_without_dlx_drops(t: MemoryTransport) -> None:
    t.declare(Topology.of(Queue("q")))
    publish(t, "q", "m1")
    d = t.get("q")
    assert d is not None
    t.reject(d, requeue=False)
    assert t.get("q") is None


def test_competing_consumers_get_messages_round_robin(t: MemoryTransport) -> None:
    t.declare(Topology.of(Queue("q")))
    a, b = t.consume("q", prefetch=10), t.consume("q", prefetch=10)
    publish(t, "q", "m1", "m2", "m3", "m4")
    got_a = [d.body for d in iter(lambda: a.get(timeout=0), None)]
    got_b = [d.body for d in iter(lambda: b.get(timeout=0), None)]
    assert (got_a, got_b) == ([b"m1", b"m3"], [b"m2", b"m4"])


def test_prefetch_limits_unacked_deliveries(t: MemoryTransport) -> None:
    t.declare(Topology.of(Queue("q")))
    publish(t, "q", "m1", "m2", "m3")
    c = t.consume("q", prefetch=2)
    first, second = c.get(timeout=0), c.get(timeout=0)
    assert first is not None and second is not None
    assert c.get(timeout=0) is None  # two unacked: no more
    assert t.broker.message_count("q") == 1
    t.ack(first)
    third = c.get(timeout=0)
    assert third is not None and third.body == b"m3"


def test_prefetch_zero_is_unlimited(t: MemoryTransport) -> None:
    t.declare(Topology.of(Queue("q")))
    publish(t, "q", *(f"m{i}" for i in range(50)))
    c = t.consume("q", prefetch=0)
    assert len([d for d in iter(lambda: c.get(timeout=0), None)]) == 50


def test_fair_dispatch_with_prefetch_one(t: MemoryTransport) -> None:
    t.declare(Topology.of(Queue("q")))
    slow, fast = t.consume("q", prefetch=1), t.consume("q", prefetch=1)
    publish(t, "q", *(f"m{i}" for i in range(6)))
    held = slow.get(timeout=0)  # the slow worker never acks
    assert held is not None and held.body == b"m0"
    done = []
    while (d := fast.get(timeout=0)) is not None:
        done.append(d.body)
        t.ack(d)
    assert done == [b"m1", b"m2", b"m3", b"m4", b"m5"]
    assert slow.get(timeout=0) is None


def test_cancel_requeues_everything_unacked(t: MemoryTransport) -> None:
    t.declare(Topology.of(Queue("q")))
    publish(t, "q", "m1", "m2", "m3", "m4")
    c = t.consume("q", prefetch=3)
    taken = c.get(timeout=0)
    c.cancel()  # closes its channel, as the RabbitMQ transport does
    assert c.get(timeout=0) is None and list(c) == []
    assert taken is not None
    t.ack(taken)  # does nothing: the message is back in the queue
    got = [(d.body, d.redelivered) for d in drain(t, "q")]
    assert got == [(b"m1", True), (b"m2", True), (b"m3", True), (b"m4", False)]


def test_single_active_consumer(t: MemoryTransport) -> None:
    t.declare(Topology.of(Queue("q", single_active_consumer=True)))
    a, b = t.consume("q", prefetch=0), t.consume("q", prefetch=0)
    publish(t, "q", "m1", "m2")
    assert b.get(timeout=0) is None
    a.cancel()
    assert [d.body for d in iter(lambda: b.get(timeout=0), None)] == [b"m1", b"m2"]


# ------------------------------------------------------------------ TTL


def test_queue_ttl_expires_and_dead_letters(t: MemoryTransport, clock: Clock) -> None:
    with_dlq(t, Queue("q", message_ttl=300, dead_letter_exchange="dlx"))
    publish(t, "q", "m1")
    clock.advance(0.299)
    assert t.broker.message_count("q") == 1
    clock.advance(0.001)
    assert t.get("q") is None  # an expired message is never delivered
    (dead,) = drain(t, "dlq")
    assert dead.headers["x-death"][0]["reason"] == "expired"
    assert "original-expiration" not in dead.headers["x-death"][0]


def test_per_message_ttl_expires_only_at_the_head(t: MemoryTransport, clock: Clock) -> None:
    with_dlq(t, Queue("q", message_ttl=300, dead_letter_exchange="dlx"))
    publish(t, "q", "long", expiration="1000")  # lower wins: 300
    publish(t, "q", "short-behind", expiration="50")
    clock.advance(0.15)
    t.purge("dlq")
    assert t.broker.message_count("q") == 2  # the short one waits behind the head
    clock.advance(0.3)
    got = [(d.body, d.headers["x-death"][0]["original-expiration"]) for d in drain(t, "dlq")]
    assert got == [(b"long", "1000"), (b"short-behind", "50")]


def test_ttl_zero_reaches_a_waiting_consumer_else_expires(t: MemoryTransport, clock: Clock) -> None:
    with_dlq(t, Queue("q", message_ttl=0, dead_letter_exchange="dlx"))
    publish(t, "q", "nobody-waits")
    assert t.get("q") is None
    assert bodies(t, "dlq") == [b"nobody-waits"]
    c = t.consume("q")
    publish(t, "q", "taken")
    d = c.get(timeout=0)
    assert d is not None and d.body == b"taken"


def test_requeued_message_keeps_its_deadline(t: MemoryTransport, clock: Clock) -> None:
    with_dlq(t, Queue("q", message_ttl=400, dead_letter_exchange="dlx"))
    publish(t, "q", "rq")
    clock.advance(0.3)
    d = t.get("q")
    clock.advance(0.2)
    assert d is not None
    t.nack(d, requeue=True)
    assert t.get("q") is None
    assert [x.headers["x-death"][0]["reason"] for x in drain(t, "dlq")] == ["expired"]


def test_invalid_expiration_is_refused(t: MemoryTransport) -> None:
    t.declare(Topology.of(Queue("q")))
    # Refused before it reaches the broker, as on the RabbitMQ transport (issue 12 item 9);
    # RabbitMQ itself would close the channel with 406 (tests/test_embedded_validation.py).
    with pytest.raises(PropertyError, match="expiration is 'soon'"):
        t.publish("", "q", b"m", Properties(expiration="soon"))
    assert t.flush() == [] and t.get("q") is None


# ----------------------------------------------------------- max-length


def test_drop_head_dead_letters_with_maxlen(t: MemoryTransport) -> None:
    with_dlq(t, Queue("q", max_length=2, dead_letter_exchange="dlx", dead_letter_routing_key="k"))
    publish(t, "q", "m0", "m1", "m2", "m3", headers={"CC": ["cc1"]})
    assert bodies(t, "q") == [b"m2", b"m3"]
    dead = drain(t, "dlq")
    assert [d.body for d in dead] == [b"m0", b"m1"]
    assert dead[0].routing_key == "k"
    assert "CC" not in dead[0].headers  # x-dead-letter-routing-key replaces the keys
    assert dead[0].headers["x-death"][0]["routing-keys"] == ("q", "cc1")
    assert dead[0].headers["x-death"][0]["reason"] == "maxlen"


def test_max_length_bytes_drops_until_within(t: MemoryTransport) -> None:
    t.declare(Topology.of(Queue("q", max_length_bytes=10)))
    publish(t, "q", "12345", "678", "abcd")
    assert bodies(t, "q") == [b"678", b"abcd"]


def test_unacked_messages_do_not_count_toward_max_length(t: MemoryTransport) -> None:
    t.declare(Topology.of(Queue("q", max_length=1)))
    publish(t, "q", "m1")
    held = t.get("q")
    publish(t, "q", "m2")
    assert held is not None and bodies(t, "q") == [b"m2"]


def test_reject_publish_nacks(t: MemoryTransport) -> None:
    t.declare(Topology.of(Queue("q", max_length=1, overflow="reject-publish")))
    ok = t.publish("", "q", b"r0")
    refused = t.publish("", "q", b"r1")
    assert (ok.outcome, refused.outcome) == (Outcome.CONFIRMED, Outcome.NACKED)
    assert t.flush() == [refused]
    assert bodies(t, "q") == [b"r0"]


def test_reject_publish_dlx_nacks_and_dead_letters(t: MemoryTransport) -> None:
    with_dlq(t, Queue("q", max_length=1, overflow="reject-publish-dlx", dead_letter_exchange="dlx"))
    t.publish("", "q", b"r0")
    assert t.publish("", "q", b"r1", Properties(expiration="9000")).outcome is Outcome.NACKED
    (dead,) = drain(t, "dlq")
    assert dead.body == b"r1" and dead.properties.expiration is None
    entry = dead.headers["x-death"][0]
    assert (entry["reason"], entry["original-expiration"]) == ("maxlen", "9000")


# ------------------------------------------------------- delivery limit


def test_quorum_delivery_limit_dead_letters_past_the_limit(t: MemoryTransport) -> None:
    with_dlq(t, Queue("q", type="quorum", delivery_limit=2, dead_letter_exchange="dlx"))
    publish(t, "q", "m1", expiration="100000")
    seen = []
    while (d := t.get("q")) is not None:
        seen.append((d.redelivered, d.headers["x-delivery-count"]))
        t.nack(d, requeue=True)
    # RabbitMQ 3.10.8: delivered with counts 0, 1, 2; the third return exceeds 2.
    assert seen == [(False, 0), (True, 1), (True, 2)]
    (dead,) = drain(t, "dlq")
    entry = dead.headers["x-death"][0]
    assert (entry["reason"], entry["exchange"], entry["routing-keys"]) == ("delivery_limit", "", ("q",))
    assert "x-delivery-count" not in dead.headers


def test_quorum_consumer_sees_delivery_count_only_on_redelivery(t: MemoryTransport) -> None:
    t.declare(Topology.of(Queue("q", type="quorum")))
    publish(t, "q", "m1", "m2")
    c = t.consume("q", prefetch=1)
    first = c.get(timeout=0)
    assert first is not None and first.headers == {}
    t.nack(first)
    got = []
    for _ in range(2):
        d = c.get(timeout=0)
        assert d is not None
        got.append((d.body, dict(d.headers)))
        t.ack(d)
    assert got == [(b"m2", {}), (b"m1", {"x-delivery-count": 1})]


# ----------------------------------------------------------- x-expires


def test_unused_queue_expires(t: MemoryTransport, clock: Clock) -> None:
    t.declare(Topology.of(Queue("q", expires=1000)))
    clock.advance(0.6)
    assert t.get("q") is None  # basic.get uses it: the clock starts again
    clock.advance(0.6)
    t.declare(Topology.of(Queue("q", expires=1000)))  # so does a redeclare
    clock.advance(0.9)
    assert t.broker.has_queue("q")
    clock.advance(0.2)
    t.broker.expire_due()
    assert not t.broker.has_queue("q")


def test_a_queue_with_consumers_does_not_expire(t: MemoryTransport, clock: Clock) -> None:
    t.declare(Topology.of(Queue("q", expires=1000)))
    consumer = t.consume("q")
    clock.advance(5)
    t.broker.expire_due()
    assert t.broker.has_queue("q")
    consumer.cancel()
    clock.advance(0.999)
    t.broker.expire_due()
    assert t.broker.has_queue("q")
    clock.advance(0.002)
    t.broker.expire_due()
    assert not t.broker.has_queue("q")
