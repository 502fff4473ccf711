"""The bounds `Queue` enforces are the live broker's own: the largest value it lets through
is declared, one more is refused by RabbitMQ too (checked on each release's broker)."""

from __future__ import annotations

import pika
import pytest
from broker_under_test import plain_amqp_url

from routing._amqp import MAX_EXPIRY_MS
from routing.errors import TopologyError
from routing.topology import Queue, QueueType, Topology
from routing.transport.rabbitmq import RabbitTransport

pytestmark = pytest.mark.broker


@pytest.mark.parametrize("qtype", list(QueueType))
@pytest.mark.parametrize("field", ["message_ttl", "expires"])
def test_ten_years_is_rabbitmqs_limit_and_ours(
    amqp_url: str, unique: str, qtype: QueueType, field: str
) -> None:
    with pytest.raises(TopologyError, match=f"queue '{unique}': {field}"):
        Queue(unique, type=qtype, **{field: MAX_EXPIRY_MS + 1})
    largest = Queue(unique, type=qtype, **{field: MAX_EXPIRY_MS})
    with RabbitTransport(amqp_url, name="routing-tests") as t:
        try:
            assert t.declare(Topology.of(largest)).created == (f"queue '{unique}'",)
        finally:
            t.delete_queue(unique)
    # One more, sent around our check: RabbitMQ refuses it (406 value_too_large).
    arguments = dict(largest.declare_arguments)
    arguments[f"x-{'message-ttl' if field == 'message_ttl' else 'expires'}"] = MAX_EXPIRY_MS + 1
    connection = pika.BlockingConnection(pika.URLParameters(plain_amqp_url(amqp_url)))
    try:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker, match="value_too_large"):
            connection.channel().queue_declare(unique, durable=True, arguments=arguments)
    finally:
        connection.close()


def test_classic_only_arguments_are_refused_by_rabbitmq_on_quorum_queues(amqp_url: str, unique: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(plain_amqp_url(amqp_url)))
    try:
        for arg, value in (
            ("x-queue-mode", "lazy"),
            ("x-queue-version", 2),
            ("x-queue-master-locator", "min-masters"),
        ):
            with pytest.raises(TopologyError, match=f"argument '{arg}' is for classic queues only"):
                Queue(unique, type="quorum", arguments={arg: value})
            with pytest.raises(pika.exceptions.ChannelClosedByBroker, match=f"invalid arg '{arg}'"):
                connection.channel().queue_declare(
                    unique, durable=True, arguments={"x-queue-type": "quorum", arg: value}
                )
    finally:
        connection.close()
