"""Dead-lettering: the `x-death` header as RabbitMQ 3.10.8 builds it, routing, and cycles.

The expected shapes were read from the real broker (publish, reject without requeue, fetch
from the dead-letter queue with pika and print the headers): see the report of issue 4.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from routing import Exchange, Queue, Topology
from routing.embedded import forget
from routing.embedded.dead_lettering import dead_letter_headers, is_cycle
from routing.transport import Delivery, Properties
from routing.transport.memory import MemoryTransport

NOW = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
SECOND = NOW.replace(microsecond=0)


@pytest.fixture
def t(unique: str) -> Iterator[MemoryTransport]:
    # These cases were checked against RabbitMQ 3.10.8: the embedded broker in that release's
    # profile (4.0's differences are in tests/test_embedded_queue_reference.py, on both).
    with MemoryTransport(f"memory://{unique}?rabbitmq=3.10") as transport:
        yield transport
    forget(f"memory://{unique}")


def take(t: MemoryTransport, queue: str) -> Delivery:
    d = t.get(queue)
    assert d is not None, f"nothing in {queue}"
    t.ack(d)
    return d


def reject(t: MemoryTransport, queue: str) -> None:
    d = t.get(queue)
    assert d is not None, f"nothing in {queue}"
    t.reject(d, requeue=False)


# ---------------------------------------------------------- pure header


def test_first_death_shape_and_order() -> None:
    headers = dead_letter_headers(
        {"zeta": 1, "CC": ["c1"], "alpha": "a", "Beta": True},
        reason="rejected",
        queue="q1",
        exchange="",
        routing_key="q1",
        expiration="60000",
        drop_cc=False,
        now=NOW,
    )
    # The whole table comes back sorted by key; the first entry keeps RabbitMQ's field order.
    assert list(headers) == [
        "Beta", "CC", "alpha", "x-death",
        "x-first-death-exchange", "x-first-death-queue", "x-first-death-reason", "zeta",
    ]  # fmt: skip
    (entry,) = headers["x-death"]
    assert list(entry.items()) == [
        ("count", 1),
        ("reason", "rejected"),
        ("queue", "q1"),
        ("time", SECOND),
        ("exchange", ""),
        ("routing-keys", ["q1", "c1"]),
        ("original-expiration", "60000"),
    ]
    assert (headers["x-first-death-reason"], headers["x-first-death-queue"]) == ("rejected", "q1")


def test_repeat_in_same_queue_and_reason_increments_and_keeps_first_details() -> None:
    first = dead_letter_headers(
        None, reason="rejected", queue="q", exchange="x", routing_key="a.b",
        expiration="60000", drop_cc=False, now=NOW,
    )  # fmt: skip
    later = datetime(2030, 1, 1, tzinfo=UTC)
    second = dead_letter_headers(
        first, reason="rejected", queue="q", exchange="other", routing_key="a.z",
        expiration="5000", drop_cc=False, now=later,
    )  # fmt: skip
    (entry,) = second["x-death"]
    # Sorted keys now; time, exchange, keys and expiration are still the first death's.
    assert list(entry.items()) == [
        ("count", 2),
        ("exchange", "x"),
        ("original-expiration", "60000"),
        ("queue", "q"),
        ("reason", "rejected"),
        ("routing-keys", ["a.b"]),
        ("time", SECOND),
    ]
    assert second["x-first-death-exchange"] == "x"


def test_new_queue_or_reason_goes_first_and_first_death_stays() -> None:
    h = dead_letter_headers(
        None, reason="rejected", queue="q1", exchange="", routing_key="q1",
        expiration=None, drop_cc=False, now=NOW,
    )  # fmt: skip
    h = dead_letter_headers(
        {**h, "CC": ["c1"]}, reason="expired", queue="q2", exchange="", routing_key="q2",
        expiration=None, drop_cc=True, now=NOW,
    )  # fmt: skip
    assert [(e["queue"], e["reason"]) for e in h["x-death"]] == [("q2", "expired"), ("q1", "rejected")]
    assert list(h["x-death"][0]) == ["count", "exchange", "queue", "reason", "routing-keys", "time"]
    assert h["x-death"][0]["routing-keys"] == ["q2", "c1"]
    assert "CC" not in h  # removed when x-dead-letter-routing-key is set
    assert (h["x-first-death-queue"], h["x-first-death-reason"]) == ("q1", "rejected")


def test_cycles_without_a_rejection_are_detected() -> None:
    expired_loop = [{"queue": "a", "reason": "expired"}]
    assert is_cycle("a", expired_loop)
    retry = [{"queue": "retry", "reason": "expired"}, {"queue": "work", "reason": "rejected"}]
    assert not is_cycle("work", retry)
    assert not is_cycle("elsewhere", retry)
    assert is_cycle("retry", retry)


# ------------------------------------------------------- through the broker


def test_reject_dead_letters_with_rabbitmqs_x_death(t: MemoryTransport) -> None:
    x, dlx = Exchange("x", "topic"), Exchange("dlx", "fanout")
    t.declare(
        Topology.of(
            x, dlx, Queue("q", dead_letter_exchange="dlx"), Queue("dlq"), x.bind("q", "a.*"), dlx.bind("dlq")
        )
    )
    props = Properties(headers={"CC": ["a.c"], "BCC": ["a.d"], "h": 1}, expiration="60000", message_id="m1")
    t.publish("x", "a.b", b"hello", props)
    reject(t, "q")
    dead = take(t, "dlq")
    assert (dead.exchange, dead.routing_key, dead.body) == ("dlx", "a.b", b"hello")
    assert dead.properties.expiration is None and dead.properties.message_id == "m1"
    assert not dead.redelivered
    entry = dead.headers["x-death"][0]
    assert isinstance(entry["time"], datetime) and entry["time"].tzinfo is not None
    assert {k: v for k, v in entry.items() if k != "time"} == {
        "count": 1,
        "reason": "rejected",
        "queue": "q",
        "exchange": "x",
        "routing-keys": ("a.b", "a.c"),  # BCC is not shown
        "original-expiration": "60000",
    }
    assert {k: v for k, v in dead.headers.items() if k != "x-death"} == {
        "CC": ("a.c",),
        "h": 1,
        "x-first-death-exchange": "x",
        "x-first-death-queue": "q",
        "x-first-death-reason": "rejected",
    }


def test_dead_letter_routes_with_original_keys_bcc_included(t: MemoryTransport) -> None:
    dlx = Exchange("dlx", "direct")
    t.declare(Topology.of(dlx, Queue("q", dead_letter_exchange="dlx"), Queue("dlq"), dlx.bind("dlq", "bcc")))
    t.publish("", "q", b"m", Properties(headers={"BCC": ["bcc"]}))
    reject(t, "q")
    dead = take(t, "dlq")
    assert dead.routing_key == "q" and dead.headers["x-death"][0]["routing-keys"] == ("q",)


def test_dead_letter_to_default_exchange_by_routing_key(t: MemoryTransport) -> None:
    t.declare(
        Topology.of(Queue("q", dead_letter_exchange="", dead_letter_routing_key="parked"), Queue("parked"))
    )
    t.publish("", "q", b"m")
    reject(t, "q")
    assert take(t, "parked").routing_key == "parked"


def test_missing_dead_letter_exchange_drops(t: MemoryTransport) -> None:
    t.broker.declare_queue(Queue("q", dead_letter_exchange="nowhere"), None)
    t.publish("", "q", b"m")
    reject(t, "q")
    assert t.get("q") is None


def test_retry_loop_through_rejections_counts_up(t: MemoryTransport) -> None:
    # work rejects -> retry (TTL 0) expires -> back to work: a rejection in every loop.
    retry_x, work_x = Exchange("retry-x", "fanout"), Exchange("work-x", "fanout")
    t.declare(
        Topology.of(
            retry_x, work_x,
            Queue("work", dead_letter_exchange="retry-x"),
            Queue("retry", message_ttl=0, dead_letter_exchange="work-x"),
            retry_x.bind("retry"), work_x.bind("work"),
        )
    )  # fmt: skip
    t.publish("", "work", b"job")
    for _ in range(3):
        reject(t, "work")
    d = take(t, "work")
    counts = {(e["queue"], e["reason"]): e["count"] for e in d.headers["x-death"]}
    assert counts == {("work", "rejected"): 3, ("retry", "expired"): 3}
    assert [e["queue"] for e in d.headers["x-death"]] == ["retry", "work"]
    assert d.headers["x-first-death-queue"] == "work"


def test_expiry_loop_without_rejection_is_dropped(t: MemoryTransport) -> None:
    loop = Exchange("loop", "fanout")
    t.declare(Topology.of(loop, Queue("a", message_ttl=0, dead_letter_exchange="loop"), loop.bind("a")))
    t.publish("", "a", b"m")
    assert t.get("a") is None  # expired, dead-lettered to itself, detected, dropped
