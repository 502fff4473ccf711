"""Dead-lettering on both brokers: rejection, TTL expiry (per queue and per message),
max-length overflow and the quorum delivery limit, and the `x-death` header each leaves."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from routing.errors import Nacked
from routing.topology import Binding, Exchange, Queue
from routing.transport import Delivery, Outcome, Properties

from .conftest import WAIT, Harness, plain

TTL = 200  # milliseconds: short, so the suite stays fast


def deaths(delivery: Delivery) -> list[dict[str, Any]]:
    """`x-death` as plain data, with `time` checked for presence and type, then dropped."""
    entries = plain(delivery.headers["x-death"])
    for entry in entries:
        assert isinstance(entry.pop("time"), datetime)
    return entries


def first_death(delivery: Delivery) -> dict[str, Any]:
    return {k: v for k, v in plain(delivery.headers).items() if k.startswith("x-first-death-")}


def with_dlq(harness: Harness, *entities: Exchange | Queue | Binding) -> tuple[Exchange, Queue]:
    """A fanout dead-letter exchange `dlx` and its queue `dlq`, declared with `entities`."""
    dlx = Exchange(harness.name("dlx"), "fanout", durable=False)
    dlq = Queue(harness.name("dlq"))
    harness.declare(dlx, dlq, dlx.bind(dlq), *entities)
    return dlx, dlq


def test_rejected_message_is_dead_lettered_with_x_death(harness: Harness) -> None:
    x = Exchange(harness.name("x"), "direct", durable=False)
    q = Queue(harness.name("q"), dead_letter_exchange=harness.name("dlx"))
    dlx, dlq = with_dlq(harness, x, q, x.bind(q, "k"))
    harness.t.publish(x.name, "k", b"m", Properties(headers={"app": "a"}))
    assert harness.t.flush(timeout=WAIT) == []
    got = harness.get(q.name)
    assert got is not None
    harness.t.reject(got, requeue=False)
    dead = harness.take(dlq.name)
    assert (dead.body, dead.exchange, dead.routing_key) == (b"m", dlx.name, "k")
    assert deaths(dead) == [
        {"count": 1, "reason": "rejected", "queue": q.name, "exchange": x.name, "routing-keys": ["k"]}
    ]
    assert first_death(dead) == {
        "x-first-death-reason": "rejected",
        "x-first-death-queue": q.name,
        "x-first-death-exchange": x.name,
    }
    assert plain(dead.headers)["app"] == "a"
    assert harness.drain(q.name) == []


def test_dead_letter_routing_key_and_a_second_death_count(harness: Harness) -> None:
    """Rejected twice from the same queue: one x-death entry whose count is 2, first-death kept."""
    q = Queue(harness.name("q"), dead_letter_exchange="", dead_letter_routing_key=harness.name("q"))
    harness.declare(q)
    harness.publish_all("", [(q.name, b"m")])
    for _ in range(2):
        got = harness.get(q.name)
        assert got is not None
        harness.t.nack(got, requeue=False)  # back into q itself, through the default exchange
    again = harness.take(q.name)
    assert deaths(again) == [
        {"count": 2, "reason": "rejected", "queue": q.name, "exchange": "", "routing-keys": [q.name]}
    ]
    assert first_death(again) == {
        "x-first-death-reason": "rejected",
        "x-first-death-queue": q.name,
        "x-first-death-exchange": "",
    }


def test_per_queue_ttl_expires_into_the_dead_letter_queue(harness: Harness) -> None:
    q = Queue(harness.name("q"), message_ttl=TTL, dead_letter_exchange=harness.name("dlx"))
    _, dlq = with_dlq(harness, q)
    harness.publish_all("", [(q.name, b"m")])
    dead = harness.take(dlq.name)
    assert deaths(dead) == [
        {"count": 1, "reason": "expired", "queue": q.name, "exchange": "", "routing-keys": [q.name]}
    ]
    assert first_death(dead)["x-first-death-reason"] == "expired"
    assert harness.drain(q.name) == []


def test_per_message_ttl_expires_and_keeps_the_original_expiration(harness: Harness) -> None:
    q = Queue(harness.name("q"), dead_letter_exchange=harness.name("dlx"))
    _, dlq = with_dlq(harness, q)
    harness.t.publish("", q.name, b"short", Properties(expiration=str(TTL)))
    harness.t.publish("", q.name, b"long", Properties(expiration="60000"))
    assert harness.t.flush(timeout=WAIT) == []
    dead = harness.take(dlq.name)
    assert dead.body == b"short" and dead.properties.expiration is None
    assert deaths(dead) == [
        {
            "count": 1,
            "reason": "expired",
            "queue": q.name,
            "exchange": "",
            "routing-keys": [q.name],
            "original-expiration": str(TTL),
        }
    ]
    assert harness.drain(q.name) == [b"long"]


def test_max_length_drop_head_dead_letters_the_oldest(harness: Harness) -> None:
    q = Queue(harness.name("q"), max_length=2, dead_letter_exchange=harness.name("dlx"))
    _, dlq = with_dlq(harness, q)
    harness.publish_all("", [(q.name, b"m1"), (q.name, b"m2"), (q.name, b"m3")])
    dead = harness.take(dlq.name)
    assert dead.body == b"m1"
    assert [(d["reason"], d["queue"], d["count"]) for d in deaths(dead)] == [("maxlen", q.name, 1)]
    assert harness.drain(q.name) == [b"m2", b"m3"]
    assert harness.drain(dlq.name) == []


def test_max_length_reject_publish_nacks_the_newest(harness: Harness) -> None:
    q = Queue(harness.name("q"), max_length=1, overflow="reject-publish")
    harness.declare(q)
    kept = harness.t.publish("", q.name, b"m1")
    refused = harness.t.publish("", q.name, b"m2")
    assert harness.t.flush(timeout=WAIT) == [refused]
    assert (kept.outcome, refused.outcome) == (Outcome.CONFIRMED, Outcome.NACKED)
    with pytest.raises(Nacked, match="nacked"):
        refused.raise_for_outcome()
    assert harness.drain(q.name) == [b"m1"]


def test_quorum_delivery_limit_dead_letters_after_too_many_returns(harness: Harness) -> None:
    q = Queue(harness.name("q"), type="quorum", delivery_limit=1, dead_letter_exchange=harness.name("dlx"))
    _, dlq = with_dlq(harness, q)
    harness.publish_all("", [(q.name, b"m")])
    deliveries = 0
    while (got := harness.get(q.name, wait=1.0)) is not None:
        deliveries += 1
        assert deliveries <= 5, "the delivery limit never took effect"
        harness.t.nack(got, requeue=True)
    assert deliveries == 2  # the first delivery, then one more: the limit counts returns
    dead = harness.take(dlq.name)
    assert [(d["reason"], d["queue"], d["count"]) for d in deaths(dead)] == [("delivery_limit", q.name, 1)]
    assert first_death(dead)["x-first-death-reason"] == "delivery_limit"
