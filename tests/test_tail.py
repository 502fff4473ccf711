"""`routing.tail`: a temporary queue bound to an exchange, on the embedded broker and on
RabbitMQ; the exchange as the broker has it, and no exchange left behind by a guess."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from broker_under_test import naming_management as with_management

from routing import open_transport
from routing.embedded import forget
from routing.errors import DeclareConflicts, TopologyError, UnknownExchange
from routing.management import Management
from routing.tail import Tail, open_tail
from routing.topology import Binding, Exchange, ExchangeType, Topology
from routing.transport import Outcome, Transport


@pytest.fixture
def memory(unique: str) -> Iterator[Transport]:
    url = f"memory://{unique}"
    with open_transport(url) as transport:
        yield transport
    forget(url)


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"exchange": ""}, "default exchange cannot be bound"),
        ({"exchange": "x", "routing_key": "a", "headers": {"h": 1}}, "not both"),
        ({"exchange": "x", "match": "some"}, "choose 'all' or 'any'"),
    ],
)
def test_a_tail_that_cannot_be_bound_is_refused_before_any_io(options: dict[str, object], says: str) -> None:
    with pytest.raises(TopologyError, match=says):
        Tail(**options)  # type: ignore[arg-type]


def test_the_binding_follows_the_exchange_type() -> None:
    topic, direct = Exchange("t", "topic"), Exchange("d", "direct")
    assert Tail(exchange="t").binding(topic, "q") == Binding("t", "q", "#")
    assert Tail(exchange="d", routing_key="k").binding(direct, "q") == Binding("d", "q", "k")
    headers = Tail(exchange="amq.headers", headers={"a": 1}, match="any").binding(None, "q")
    assert headers == Binding("amq.headers", "q", arguments={"x-match": "any", "a": 1})
    assert Tail(exchange="amq.fanout").binding(None, "q") == Binding("amq.fanout", "q")
    with pytest.raises(TopologyError, match="give the routing key"):
        Tail(exchange="d").binding(direct, "q")
    with pytest.raises(TopologyError, match="--header needs a headers exchange"):
        Tail(exchange="t", headers={"a": 1}).binding(topic, "q")
    assert Tail(exchange="x", headers={"a": 1}).guessed_type() is ExchangeType.HEADERS
    assert Tail(exchange="x", routing_key="k").guessed_type() is ExchangeType.TOPIC
    assert Tail(exchange="x").guessed_type() is ExchangeType.FANOUT


def _watch_once(transport: Transport, tail: Tail, key: str, url: str | None = None) -> tuple[str, bytes]:
    """Open the tail, publish one message through its exchange, read it back; returns
    (the tail queue's name, the body received)."""
    with open_tail(transport, tail, url=url) as tap:
        transport.publish(tail.exchange, key, b'{"n": 1}')
        delivery = tap.consumer.get(timeout=10)
        assert delivery is not None and delivery.queue == tap.queue
        transport.ack(delivery)
        return tap.queue, delivery.body


def test_tail_on_the_embedded_broker(memory: Transport) -> None:
    memory.declare(Topology.of(Exchange("logs", "topic")))
    queue, body = _watch_once(memory, Tail(exchange="logs", routing_key="*.error"), "billing.error")
    assert body == b'{"n": 1}'
    with pytest.raises(Exception, match="no queue"):  # deleted on exit
        memory.message_count(queue)


def test_a_guess_never_leaves_an_exchange_behind(memory: Transport) -> None:
    refused = pytest.raises(UnknownExchange, match="no exchange 'nothing' on the broker")
    with refused, open_tail(memory, Tail(exchange="nothing")):
        pass
    memory.declare(Topology.of(Exchange("nothing", "direct")))  # not there with another type


def test_a_wrong_guess_is_a_conflict(memory: Transport) -> None:
    memory.declare(Topology.of(Exchange("jobs", "direct")))
    with pytest.raises(DeclareConflicts), open_tail(memory, Tail(exchange="jobs")):
        pass
    _watch_once(memory, Tail(exchange="jobs", routing_key="k", exchange_type=ExchangeType.DIRECT), "k")


@pytest.mark.broker
def test_tail_on_rabbitmq_reads_the_exchange_from_the_management_api(
    amqp_url: str, management_url: str, unique: str
) -> None:
    exchange, ae = f"{unique}.logs", f"{unique}.ae"
    with open_transport(amqp_url) as transport:
        transport.declare(
            Topology.of(
                Exchange(ae, "fanout", auto_delete=True),
                Exchange(exchange, "topic", auto_delete=True, alternate_exchange=ae),
            )
        )
        url = with_management(amqp_url, management_url)
        try:
            queue, body = _watch_once(transport, Tail(exchange=exchange), "any.key", url=url)
            assert body == b'{"n": 1}'
            assert Management.for_broker(url).queue(queue) is None  # deleted on exit
            refused = pytest.raises(UnknownExchange, match=f"no exchange '{unique}.none'")
            with refused, open_tail(transport, Tail(exchange=f"{unique}.none"), url=url):
                pass
        finally:
            transport.delete_exchange(exchange)
            transport.delete_exchange(ae)


@pytest.mark.broker
def test_tail_on_rabbitmq_without_management_undoes_its_guess(amqp_url: str, unique: str) -> None:
    missing = f"{unique}.none"
    with open_transport(amqp_url) as transport:
        refused = pytest.raises(UnknownExchange, match=f"no exchange '{missing}' on the broker")
        with refused, open_tail(transport, Tail(exchange=missing)):  # no URL: no management API to ask
            pass
        gone = transport.publish(missing, "k", b"{}")  # RabbitMQ refuses it: 404, no such exchange
        assert transport.flush(timeout=10) == [gone] and gone.outcome is Outcome.UNCONFIRMED
        transport.declare(Topology.of(Exchange(f"{unique}.x", "fanout")))  # as tail guesses it
        try:
            _watch_once(transport, Tail(exchange=f"{unique}.x"), "")
        finally:
            transport.delete_exchange(f"{unique}.x")
