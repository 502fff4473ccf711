"""Testing a shop's publishers and handlers with routing's pytest plugin: copy this file.

    pytest examples/test_with_plugin.py                         # on an embedded broker per test
    pytest examples/test_with_plugin.py --routing-url amqp://guest:guest@localhost:5672/tests

The same tests run on both: the plugin (loaded by pytest once routing is installed) gives
`routing_topology_declared`, the broker under test with `routing_topology` declared, and
`routing_transport`, the transport the code under test publishes through. On RabbitMQ, what
a test declared is deleted after it; give the tests a vhost of their own (`/tests` above:
`rabbitmqctl add_vhost tests`, `set_permissions -p tests guest ".*" ".*" ".*"`), so fixed
names such as `shop.events` meet nothing else.
"""

from __future__ import annotations

from typing import Any

import pytest

from examples.shop_topology import events
from examples.shop_topology import topology as shop
from routing import Envelope, Publisher, SchemaRegistry, Topology, Transport
from routing.testing import Broker
from routing.worker import App, Permanent, RetryPolicy

# The shop's events have no JSON Schema of their own: accept unknown types.
SCHEMAS = SchemaRegistry.bundled(allow_unknown=True)
# Retries in tests wait milliseconds; the app's own policy may wait minutes.
FAST = RetryPolicy(initial=0.01, max_delay=0.05, max_attempts=3)

# ---- the code under test: what the shop publishes, and the invoicing service's handlers


def checkout(transport: Transport, order: dict[str, Any]) -> None:
    headers = {"region": order["region"], "big": order["total"] > 1000}
    publisher = Publisher(transport, registry=SCHEMAS, source="urn:shop:checkout", headers=headers)
    publisher.emit("shop.events", "order.created", "order.created", order)


invoicing = App(registry=SCHEMAS, retry=FAST)
invoiced: list[str] = []


@invoicing.handler("order.paid")
def invoice(event: Envelope) -> None:
    if event.data["amount"] < 0:
        raise Permanent(f"negative amount {event.data['amount']}")
    invoiced.append(event.data["order"])


receipts = App(registry=SCHEMAS, retry=FAST)
sent: list[str] = []


@receipts.handler("order.paid")
async def receipt(event: Envelope) -> None:  # an `async def` handler: run on an event loop
    sent.append(event.data["order"])


# ---- the topology the tests declare: the shop's, with the services' work queues bound to it


@pytest.fixture
def routing_topology() -> Topology:
    return Topology.of(
        shop,
        invoicing.topology("invoices"),
        events.bind("invoices", "order.*.paid"),
        receipts.topology("receipts"),
        events.bind("receipts", "order.*.paid"),
    )


def pay(transport: Transport, order: str, amount: int) -> None:
    publisher = Publisher(transport, registry=SCHEMAS, source="urn:shop:payments")
    publisher.emit("shop.events", "order.eu.paid", "order.paid", {"order": order, "amount": amount})


# ---- the tests


def test_an_order_reaches_its_queues(routing_topology_declared: Broker, routing_transport: Transport) -> None:
    checkout(routing_transport, {"id": "o-1", "region": "eu", "total": 2500})

    routing_topology_declared.assert_published("shop.events", "order.created", count=1)
    routing_topology_declared.assert_routed(
        ["orders.created", "audit.eu", "audit.big-orders"], type="order.created"
    )


def test_what_nothing_binds(routing_topology_declared: Broker, routing_transport: Transport) -> None:
    routing_transport.publish("shop.events", "shipment.sent", b'{"n": 1}')  # to the alternate exchange
    routing_transport.publish("shop.dlx", "nobody", b'{"n": 2}')  # a direct exchange, no such key

    routing_topology_declared.assert_routed("unrouted", routing_key="shipment.sent")
    routing_topology_declared.assert_unrouted(exchange="shop.dlx")


def test_a_rejected_payment_is_dead_lettered(
    routing_topology_declared: Broker, routing_transport: Transport
) -> None:
    pay(routing_transport, "o-2", 10)
    routing_transport.flush()
    delivery = routing_transport.get("invoices")
    assert delivery is not None
    routing_transport.reject(delivery, requeue=False)  # RabbitMQ dead-letters it to invoices.dead

    routing_topology_declared.assert_dead_lettered("invoices.dead", reason="rejected", type="order.paid")


def test_invoicing_handles_payments(routing_topology_declared: Broker, routing_transport: Transport) -> None:
    invoiced.clear()
    pay(routing_transport, "o-3", 40)
    pay(routing_transport, "o-4", -5)

    stats = routing_topology_declared.run_app(invoicing, "invoices")

    assert invoiced == ["o-3"]
    assert (stats.processed, stats.dead_lettered) == (1, 1)
    routing_topology_declared.assert_dead_lettered("invoices.dead", reason="negative amount -5", count=1)


def test_receipts_an_async_app(routing_topology_declared: Broker, routing_transport: Transport) -> None:
    sent.clear()
    pay(routing_transport, "o-5", 40)

    assert routing_topology_declared.run_app(receipts, "receipts").processed == 1
    assert sent == ["o-5"]
    routing_topology_declared.assert_queue("receipts", count=0)
