"""The embedded broker refuses what RabbitMQ refuses in a publish, as RabbitMQ does (issue 12,
items 10 and 12): the same publish on the live broker (plain pika) and on `memory://`, with
the live broker's profile."""

from __future__ import annotations

import re
from typing import Any

import pika
import pytest
from broker_under_test import plain_amqp_url

from routing.errors import ChannelClosed, PropertyError
from routing.profiles import profile
from routing.properties import check_message
from routing.topology import Queue, Topology
from routing.transport import Outcome, Properties
from routing.transport.memory import MemoryTransport

REFUSED_BY_CHANNEL = {
    "user_id": {"user_id": "bob"},
    "delivery_mode=3": {"delivery_mode": 3},
    "delivery_mode=0": {"delivery_mode": 0},
    "expiration 2**64": {"expiration": str(2**64)},
    "expiration over ten years": {"expiration": "315360000001"},
    "expiration ten years": {"expiration": "315360000000"},
    "expiration -5": {"expiration": "-5"},
    "expiration abc": {"expiration": "abc"},
    "expiration 1.5": {"expiration": "1.5"},
    "expiration empty": {"expiration": ""},
    "expiration ' 5'": {"expiration": " 5"},
    "expiration +60000": {"expiration": "+60000"},
    "expiration -0": {"expiration": "-0"},
    "expiration 007": {"expiration": "007"},
    "user_id guest": {"user_id": "guest"},
}


def _text(text: str) -> str:
    return re.sub(r",\s+", ",", text)  # Erlang pretty-prints long terms over lines


def _on_rabbitmq(url: str, queue: str | None, fields: dict[str, Any]) -> tuple[Any, ...]:
    connection = pika.BlockingConnection(pika.URLParameters(plain_amqp_url(url)))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        try:
            channel.basic_publish("", queue or "no-such-queue-here", b"m", pika.BasicProperties(**fields))
            outcome: tuple[Any, ...] = ("confirmed", 0, "")
        except pika.exceptions.ChannelClosedByBroker as exc:
            outcome = ("refused", exc.reply_code, _text(exc.reply_text))
        if queue is None:
            return outcome
        channel = connection.channel()
        return (*outcome, channel.queue_declare(queue, passive=True).method.message_count)
    finally:
        if connection.is_open:
            connection.close()


def _on_memory(memory: MemoryTransport, queue: str | None, fields: dict[str, Any]) -> tuple[Any, ...]:
    publication = memory.publish("", queue or "no-such-queue-here", b"m", Properties(**fields))
    if publication.outcome is Outcome.CONFIRMED:
        outcome: tuple[Any, ...] = ("confirmed", 0, "")
    else:
        assert publication.outcome is Outcome.UNCONFIRMED
        assert isinstance(publication.error, ChannelClosed)
        outcome = ("refused", publication.error.code, publication.error.text)
    return outcome if queue is None else (*outcome, memory.message_count(queue))


@pytest.mark.broker
@pytest.mark.parametrize("routable", [True, False], ids=["routable", "unroutable"])
@pytest.mark.parametrize("case", list(REFUSED_BY_CHANNEL))
def test_publish_refused_as_rabbitmq_refuses_it(
    case: str, routable: bool, amqp_url: str, rabbitmq_profile: str, memory: MemoryTransport, unique: str
) -> None:
    fields = REFUSED_BY_CHANNEL[case]
    queue = Queue(f"{unique}.q", durable=False, auto_delete=True) if routable else None
    try:
        check_message("", "k", Properties(**fields))
    except PropertyError:
        # The toolkit refuses it before sending, on both transports (issue 12 item 9): what
        # RabbitMQ does with it (3.10 closes the channel; 4.0 takes delivery_mode 3) never
        # happens to a toolkit user. Raw pika shows that RabbitMQ refuses the expirations.
        if "expiration" in fields:
            assert _on_rabbitmq(amqp_url, None, fields)[:2] == ("refused", 406)
        with pytest.raises(PropertyError):
            memory.publish("", queue.name if queue else "k", b"m", Properties(**fields))
        return
    memory.broker.profile = profile(rabbitmq_profile)
    if queue is not None:
        memory.declare(Topology.of(queue))
        connection = pika.BlockingConnection(pika.URLParameters(plain_amqp_url(amqp_url)))
        connection.channel().queue_declare(queue.name, auto_delete=True, arguments={"x-expires": 60000})
        connection.close()
    rabbit = _on_rabbitmq(amqp_url, queue.name if queue else None, fields)
    embedded = _on_memory(memory, queue.name if queue else None, fields)
    assert embedded == rabbit  # and the queue's depth after it, when there is a queue


@pytest.mark.parametrize(
    ("key", "headers", "named"),
    [
        ("k", {"big": 2**63}, "headers.big"),
        ("k", {"small": -(2**63) - 1}, "headers.small"),
        ("k", {"list": [1, float("inf")]}, "headers.list[1]"),
        ("k", {"t": {"nan": float("nan")}}, "headers.t.nan"),
        ("k", {"s": "a\udcff"}, "headers.s"),
        ("a\udcff", {}, "routing_key"),
    ],
)
def test_values_no_frame_carries_are_refused_before_routing(
    key: str, headers: dict[str, Any], named: str, memory: MemoryTransport, unique: str
) -> None:
    # RabbitMQ never gets these: pika and our encoder cannot write them, and a NaN or
    # infinite float makes RabbitMQ close the connection (541), losing what is in flight.
    q = Queue(key if key.isascii() else f"{unique}.q", durable=False)
    memory.declare(Topology.of(q))
    with pytest.raises(PropertyError, match=re.escape(named)):
        memory.publish("", key, b"m", Properties(headers=headers))
    assert memory.message_count(q.name) == 0
    assert memory.publish("", q.name, b"ok").outcome is Outcome.CONFIRMED  # the transport goes on
    assert memory.message_count(q.name) == 1


def test_edges_of_the_int64_range_are_taken(memory: MemoryTransport, unique: str) -> None:
    q = Queue(f"{unique}.q", durable=False)
    memory.declare(Topology.of(q))
    headers = {"max": 2**63 - 1, "min": -(2**63), "inf_text": "inf", "flag": True}
    assert memory.publish("", q.name, b"m", Properties(headers=headers)).outcome is Outcome.CONFIRMED
    delivery = memory.get(q.name)
    assert delivery is not None and dict(delivery.headers) == headers
