"""An example topology for a small shop, used by the README and the CLI tests.

routing explain examples.shop_topology:topology --exchange shop.events --routing-key order.created
routing graph examples.shop_topology:topology --markdown
routing asyncapi examples.shop_topology:topology     (with `publishes` below as its operations)
"""

from __future__ import annotations

from routing import Exchange, Publishes, Queue, Topology

events = Exchange("shop.events", "topic", alternate_exchange="shop.unrouted")
unrouted = Exchange("shop.unrouted", "fanout")
audit = Exchange("shop.audit", "headers", internal=True)
dlx = Exchange("shop.dlx", "direct")

# Its dead letters take the queue's name as their key (dead_letter_routing_key): without it they
# keep the key they were published with (order.created), which shop.dlx does not bind, and
# RabbitMQ drops them (`routing lint` says so).
orders = Queue(
    "orders.created",
    type="quorum",
    delivery_limit=5,
    dead_letter_exchange="shop.dlx",
    dead_letter_routing_key="orders.created",
)
billing = Queue("billing", message_ttl=60_000, max_length=1_000, overflow="reject-publish")
audit_eu = Queue("audit.eu")
audit_big = Queue("audit.big-orders")
lost = Queue("unrouted")
dead = Queue("dead-letters")

topology = Topology.of(
    events.bind(orders, "order.created"),
    events.bind(billing, "order.*.paid"),
    events.bind(billing, "refund.#"),
    events.bind(audit, "order.#"),
    audit.bind(audit_eu, match="all", headers={"region": "eu"}),
    audit.bind(audit_big, match="any", headers={"big": True, "priority": 9}),
    unrouted.bind(lost),
    dlx.bind(dead, "orders.created"),
    [events, unrouted, audit, dlx, orders, billing, audit_eu, audit_big, lost, dead],
)

# What the shop's services publish: `routing asyncapi` documents them as send operations,
# `routing lint ... --publishers examples.shop_topology:publishes` checks where they go.
publishes = (
    Publishes(
        "shop.events",
        "order.created",
        "order.created",
        headers={"region": "eu", "big": True},
        name="checkout",
    ),
    Publishes("shop.events", "order.eu.paid", "order.paid", name="payments"),
    Publishes("shop.events", "refund.issued", "refund.issued", name="refunds"),
)


def build() -> Topology:
    """The same topology from a factory, for `examples.shop_topology:build`."""
    return topology
