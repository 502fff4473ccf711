"""`Topology.replicated()`: one switch from classic to quorum queues for durable work."""

from __future__ import annotations

from dataclasses import fields

import pytest
from hypothesis import given, settings
from strategies import topologies

from routing.errors import TopologyError
from routing.topology import Exchange, Overflow, Queue, QueueType, Topology
from routing.transport.rabbitmq import RabbitTransport
from routing.worker.queues import WorkQueues


def shop() -> Topology:
    orders = Exchange("orders", "topic")
    dlx = Exchange("orders.dlx", "fanout")
    billing = Queue(
        "billing",
        message_ttl=30_000,
        expires=3_600_000,
        max_length=10_000,
        overflow="reject-publish",
        dead_letter_exchange="orders.dlx",
        dead_letter_routing_key="billing.dead",
        single_active_consumer=True,
        arguments={"x-custom": "kept"},
    )
    return Topology.of(
        orders,
        dlx,
        billing,
        Queue("billing.dead"),
        Queue("replies", exclusive=True),
        Queue("scratch", auto_delete=True),
        Queue("cache", durable=False),
        Queue("jobs", type="quorum", delivery_limit=5),
        orders.bind(billing, "order.*.paid"),
        dlx.bind("billing.dead"),
    )


def test_durable_classic_queues_become_quorum_with_every_other_setting_kept() -> None:
    original = shop()
    replicated = original.replicated()
    billing = replicated.queue("billing")
    assert billing is not None and billing.type is QueueType.QUORUM
    before = original.queue("billing")
    for f in fields(Queue):
        if f.name != "type":
            assert getattr(billing, f.name) == getattr(before, f.name), f.name
    assert billing.declare_arguments == {**before.declare_arguments, "x-queue-type": "quorum"}
    assert replicated.queue("billing.dead").type is QueueType.QUORUM


def test_connection_bound_and_transient_queues_stay_classic() -> None:
    replicated = shop().replicated()
    for name in ("replies", "scratch", "cache"):
        assert replicated.queue(name) == shop().queue(name), name


def test_exchanges_bindings_and_quorum_queues_are_unchanged() -> None:
    original, replicated = shop(), shop().replicated()
    assert replicated.exchanges == original.exchanges
    assert replicated.bindings == original.bindings
    assert replicated.queue("jobs") == original.queue("jobs")
    assert original.queue("billing").type is QueueType.CLASSIC  # a new value; the old one is intact


def test_replicated_twice_is_replicated_once() -> None:
    once = shop().replicated()
    assert once.replicated() == once
    assert once != shop()


def test_the_worker_queues_match_the_worker_quorum_switch() -> None:
    """The work, retry and dead-letter queues of a worker: replicated() makes quorum what
    App(quorum=True) makes quorum, TTLs and dead-letter routes kept."""
    classic = WorkQueues.for_delays("resize", [1000, 5000]).topology
    quorum = WorkQueues.for_delays("resize", [1000, 5000], quorum=True).topology
    replicated = classic.replicated()

    def shape(t: Topology) -> set[tuple[object, ...]]:
        return {
            (q.name, q.type, q.message_ttl, q.dead_letter_exchange, q.dead_letter_routing_key)
            for q in t.queues
        }

    assert shape(replicated) == shape(quorum)
    assert {q.type for q in replicated.queues} == {QueueType.QUORUM}


@pytest.mark.parametrize(
    ("queue", "named"),
    [
        (Queue("ranked", max_priority=10), "x-max-priority"),
        (Queue("ranked", arguments={"x-max-priority": 10}), "x-max-priority"),
        (Queue("bounded", max_length=5, overflow=Overflow.REJECT_PUBLISH_DLX), "reject-publish-dlx"),
        (Queue("lazy", arguments={"x-queue-mode": "lazy"}), "x-queue-mode"),
        (Queue("v2", arguments={"x-queue-version": 2}), "x-queue-version"),
        (Queue("placed", arguments={"x-queue-master-locator": "min-masters"}), "x-queue-master-locator"),
    ],
)
def test_classic_only_arguments_are_refused_by_queue_and_argument(queue: Queue, named: str) -> None:
    with pytest.raises(TopologyError) as caught:
        Topology.of(queue).replicated()
    message = str(caught.value)
    assert repr(queue.name) in message and named in message and "quorum" in message


def test_a_refused_queue_can_be_added_after_the_switch_and_stays_classic() -> None:
    ranked = Queue("ranked", max_priority=10)
    mixed = shop().replicated() + Topology.of(ranked)
    assert mixed.queue("ranked") == ranked
    assert mixed.queue("billing").type is QueueType.QUORUM


@settings(max_examples=200, deadline=None)
@given(topologies(exclusive_queues=True))
def test_any_topology_either_replicates_queue_by_queue_or_names_what_stops_it(topology: Topology) -> None:
    try:
        replicated = topology.replicated()
    except TopologyError as exc:
        blocked = [
            q
            for q in topology.queues
            if q.replicable and (q.max_priority is not None or q.overflow is Overflow.REJECT_PUBLISH_DLX)
        ]
        assert blocked and any(repr(q.name) in str(exc) for q in blocked), str(exc)
        return
    assert replicated.exchanges == topology.exchanges and replicated.bindings == topology.bindings
    assert [q.name for q in replicated.queues] == [q.name for q in topology.queues]
    for before, after in zip(topology.queues, replicated.queues, strict=True):
        assert not after.replicable
        if before.replicable:
            assert after.type is QueueType.QUORUM
            assert after.declare_arguments == {**before.declare_arguments, "x-queue-type": "quorum"}
        else:
            assert after == before
    assert replicated.replicated() == replicated


@pytest.mark.broker
def test_rabbitmq_takes_the_replicated_topology_as_it_is(amqp_url: str, unique: str) -> None:
    """Every setting a classic queue keeps is one a quorum queue accepts: declared twice,
    the second declare changes nothing."""
    orders = Exchange(f"{unique}.orders", "topic", auto_delete=True)
    work = Queue(
        f"{unique}.work",
        message_ttl=30_000,
        expires=60_000,
        max_length=100,
        overflow="reject-publish",
        dead_letter_exchange="",
        dead_letter_routing_key=f"{unique}.dead",
        single_active_consumer=True,
    )
    topology = Topology.of(orders, work, Queue(f"{unique}.dead", expires=60_000), orders.bind(work, "#"))
    replicated = topology.replicated()
    with RabbitTransport(amqp_url) as t:
        try:
            first = t.declare(replicated)
            second = t.declare(replicated)
        finally:
            for q in replicated.queues:
                t.delete_queue(q.name)
    assert len(first.created) == 4
    assert not second.changed and not second.conflicts
