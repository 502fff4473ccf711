"""The one declare walk (`routing.transport._declare`) driven through a fake broker: no
broker, no pika. Both transports run this walk; here every answer the broker could give
is chosen, including refusals and a management API that cannot say."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from routing.definitions import dump_definitions
from routing.errors import ChannelClosed, DeclareConflicts
from routing.topology import Binding, Exchange, Queue, Topology
from routing.transport._declare import (
    AsyncDeclareOps,
    DeclareOps,
    declare_topology,
    declare_topology_async,
    label,
    redeclare,
    redeclare_async,
)
from routing.transport.memory import MemoryTransport

ORDERS = Exchange("orders", "topic")
AE = Exchange("ae", "fanout")
BILLING = Queue("billing", message_ttl=30_000)
JOBS = Queue("jobs")
TOPOLOGY = Topology.of(
    ORDERS, AE, BILLING, JOBS, ORDERS.bind(BILLING, "order.*"), ORDERS.bind(JOBS, "#"), AE.bind(JOBS)
)


def _406(kind: str, name: str, arg: str, received: str, current: str) -> ChannelClosed:
    return ChannelClosed(
        406,
        f"PRECONDITION_FAILED - inequivalent arg '{arg}' for {kind} '{name}' in vhost '/': "
        f"received '{received}' but current is '{current}' (declare {kind} '{name}' on h:5672)",
    )


@dataclass
class FakeBroker:
    """`DeclareOps` over dicts. `refuse`: label -> the error its declare or bind raises;
    `knows_bindings=False`: a broker that cannot say which bindings exist (no management API)."""

    exchanges: set[str] = field(default_factory=set)
    queues: set[str] = field(default_factory=set)
    bindings: set[Binding] = field(default_factory=set)
    refuse: dict[str, ChannelClosed] = field(default_factory=dict)
    knows_bindings: bool = True
    exported: Mapping[str, Any] | None = None
    calls: list[str] = field(default_factory=list)

    def exchange_exists(self, name: str) -> bool:
        self.calls.append(f"exists exchange {name}")
        return name in self.exchanges

    def queue_exists(self, name: str) -> bool:
        self.calls.append(f"exists queue {name}")
        return name in self.queues

    def binding_exists(self, binding: Binding) -> bool | None:
        self.calls.append(f"exists {label(binding)}")
        return binding in self.bindings if self.knows_bindings else None

    def definitions(self) -> Mapping[str, Any] | None:
        self.calls.append("definitions")
        return self.exported

    def _refused(self, entity: Exchange | Queue | Binding) -> None:
        self.calls.append(f"declare {label(entity)}")
        if label(entity) in self.refuse:
            raise self.refuse[label(entity)]

    def declare_exchange(self, exchange: Exchange) -> None:
        self._refused(exchange)
        self.exchanges.add(exchange.name)

    def declare_queue(self, queue: Queue) -> None:
        self._refused(queue)
        self.queues.add(queue.name)

    def bind(self, binding: Binding) -> None:
        self._refused(binding)
        self.bindings.add(binding)


def test_the_fake_is_a_declare_ops() -> None:
    ops: DeclareOps = FakeBroker()  # mypy checks the protocol here
    assert ops.definitions() is None


def test_first_everything_is_created_then_everything_is_unchanged() -> None:
    broker = FakeBroker()
    first = declare_topology(TOPOLOGY, broker)
    everything = (  # in the topology's order: exchanges, queues, bindings, each sorted
        "exchange 'ae'",
        "exchange 'orders'",
        "queue 'billing'",
        "queue 'jobs'",
        "binding ae -> jobs",
        "binding orders -> billing [order.*]",
        "binding orders -> jobs [#]",
    )
    assert first.created == everything and first.changed
    # Bindings to what was just created are new: nobody is asked whether they exist.
    assert not [c for c in broker.calls if c.startswith("exists binding")]
    second = declare_topology(TOPOLOGY, broker)
    assert second.created == () and second.unchanged == everything and not second.changed
    assert second.conflicts == second.skipped == second.unverified == ()


def test_bindings_nobody_can_vouch_for_are_unverified_not_created() -> None:
    broker = FakeBroker(knows_bindings=False)
    declare_topology(Topology.of(ORDERS, AE, BILLING, JOBS), broker)
    report = declare_topology(TOPOLOGY, broker)
    assert report.created == ()
    assert report.unverified == (
        "binding ae -> jobs",
        "binding orders -> billing [order.*]",
        "binding orders -> jobs [#]",
    )
    # One end new: the binding is new whatever the broker can say.
    broker.queues.discard("jobs")
    report = declare_topology(TOPOLOGY, broker)
    assert report.created == ("queue 'jobs'", "binding ae -> jobs", "binding orders -> jobs [#]")
    assert report.unverified == ("binding orders -> billing [order.*]",)


def test_a_refused_entity_is_one_conflict_line_and_its_bindings_are_skipped() -> None:
    broker = FakeBroker(
        refuse={
            "exchange 'orders'": _406("exchange", "orders", "type", "topic", "direct"),
            "binding ae -> jobs": ChannelClosed(403, "ACCESS_REFUSED - access to exchange 'ae' refused"),
        }
    )
    report = declare_topology(TOPOLOGY, broker)
    assert report.conflicts == (
        "exchange 'orders': argument 'type' differs: received 'topic' but current is 'direct'",
        "binding ae -> jobs: 403 access to exchange 'ae' refused",
    )
    assert report.skipped == (
        "binding orders -> billing [order.*]: not declared, exchange 'orders' differs from the broker's",
        "binding orders -> jobs [#]: not declared, exchange 'orders' differs from the broker's",
    )
    assert report.created == ("exchange 'ae'", "queue 'billing'", "queue 'jobs'")  # the rest carried on
    assert "declare binding orders -> jobs [#]" not in broker.calls


def test_a_refused_existence_check_is_a_conflict_too() -> None:
    class Locked(FakeBroker):
        def queue_exists(self, name: str) -> bool:
            raise ChannelClosed(
                405, f"RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{name}'"
            )

    report = declare_topology(Topology.of(JOBS), Locked())
    assert report.conflicts == ("queue 'jobs': 405 cannot obtain exclusive access to locked queue 'jobs'",)
    assert report.created == ()


def test_known_differences_come_from_the_definitions_and_spare_the_broker_a_refusal() -> None:
    # The broker has billing with another TTL and no dead-letter exchange: diff names both,
    # and billing is not declared (a redeclare would close the channel at the first).
    theirs = dump_definitions(Topology.of(ORDERS, AE, Queue("billing", message_ttl=5), JOBS), vhost=None)
    broker = FakeBroker(exchanges={"orders", "ae"}, queues={"billing", "jobs"}, exported=theirs)
    report = declare_topology(TOPOLOGY, broker)
    assert report.conflicts == ("queue 'billing': argument 'x-message-ttl': topology 30000, broker 5",)
    assert "declare queue 'billing'" not in broker.calls and broker.calls[0] == "definitions"
    assert report.skipped == (
        "binding orders -> billing [order.*]: not declared, queue 'billing' differs from the broker's",
    )
    assert report.unchanged == ("exchange 'ae'", "exchange 'orders'", "queue 'jobs'")
    assert report.created == ("binding ae -> jobs", "binding orders -> jobs [#]")


def test_redeclare_checks_nothing_and_returns_every_refusal() -> None:
    broker = FakeBroker(refuse={"queue 'billing'": _406("queue", "billing", "x-message-ttl", "30000", "5")})
    problems = redeclare([ORDERS], [BILLING, JOBS], [ORDERS.bind(JOBS, "#")], broker)
    assert problems == [
        "queue 'billing': argument 'x-message-ttl' differs: received '30000' but current is '5'"
    ]
    assert not [c for c in broker.calls if c.startswith("exists") or c == "definitions"]
    assert broker.queues == {"jobs"} and len(broker.bindings) == 1


@pytest.mark.parametrize("module", ["routing.transport._declare", "routing.transport.memory"])
def test_the_declare_walk_needs_no_pika(module: str) -> None:
    code = f"import sys, {module}; sys.exit('pika' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_the_embedded_broker_reports_as_rabbitmq_does() -> None:
    # The same walk on the memory transport: a skipped binding is named there too (it was left
    # out silently), and an entity whose name holds a quote gets the one-line conflict.
    x, q = Exchange("it's", "topic"), Queue("q")
    with MemoryTransport("memory://declare-walk") as t:
        t.declare(Topology.of(x))
        with pytest.raises(DeclareConflicts) as info:
            t.declare(Topology.of(Exchange("it's", "direct"), q, Binding("it's", "q", "k")))
    assert info.value.conflicts == (
        "exchange \"it's\": argument 'type' differs: received 'direct' but current is 'topic'",
    )
    assert info.value.report.created == ("queue 'q'",)
    assert info.value.report.skipped == (
        "binding it's -> q [k]: not declared, exchange \"it's\" differs from the broker's",
    )


class AsyncFake:
    """The same fake broker behind awaitable operations, for the asyncio driver of the walk."""

    def __init__(self, broker: FakeBroker) -> None:
        self.broker = broker

    async def exchange_exists(self, name: str) -> bool:
        await asyncio.sleep(0)  # a real answer comes after a turn of the loop
        return self.broker.exchange_exists(name)

    async def queue_exists(self, name: str) -> bool:
        return self.broker.queue_exists(name)

    async def binding_exists(self, binding: Binding) -> bool | None:
        return self.broker.binding_exists(binding)

    async def definitions(self) -> Mapping[str, Any] | None:
        return self.broker.definitions()

    async def declare_exchange(self, exchange: Exchange) -> None:
        await asyncio.sleep(0)
        self.broker.declare_exchange(exchange)

    async def declare_queue(self, queue: Queue) -> None:
        self.broker.declare_queue(queue)

    async def bind(self, binding: Binding) -> None:
        self.broker.bind(binding)


def _brokers() -> list[FakeBroker]:
    theirs = dump_definitions(Topology.of(ORDERS, AE, Queue("billing", message_ttl=5), JOBS), vhost=None)
    return [
        FakeBroker(),
        FakeBroker(knows_bindings=False, exchanges={"orders", "ae"}, queues={"billing"}),
        FakeBroker(
            refuse={
                "exchange 'orders'": _406("exchange", "orders", "type", "topic", "direct"),
                "binding ae -> jobs": ChannelClosed(403, "ACCESS_REFUSED - access to exchange 'ae' refused"),
            }
        ),
        FakeBroker(exchanges={"orders", "ae"}, queues={"billing", "jobs"}, exported=theirs),
    ]


@pytest.mark.parametrize("case", range(len(_brokers())))
def test_the_asyncio_driver_walks_the_same_way(case: int) -> None:
    # Each answer the broker could give, through both drivers: the same report, and the same
    # operations asked of the broker in the same order.
    blocking, awaited = _brokers()[case], _brokers()[case]
    ops: AsyncDeclareOps = AsyncFake(awaited)  # mypy checks the protocol here
    assert asyncio.run(declare_topology_async(TOPOLOGY, ops)) == declare_topology(TOPOLOGY, blocking)
    assert awaited.calls == blocking.calls and awaited.calls
    problems = asyncio.run(redeclare_async([ORDERS], [BILLING], [ORDERS.bind(JOBS, "#")], ops))
    assert problems == redeclare([ORDERS], [BILLING], [ORDERS.bind(JOBS, "#")], blocking)
    assert awaited.calls == blocking.calls


def test_a_refused_existence_check_is_a_conflict_through_the_asyncio_driver_too() -> None:
    class Locked(AsyncFake):
        async def queue_exists(self, name: str) -> bool:
            raise ChannelClosed(
                405, f"RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{name}'"
            )

    report = asyncio.run(declare_topology_async(Topology.of(JOBS), Locked(FakeBroker())))
    assert report.conflicts == ("queue 'jobs': 405 cannot obtain exclusive access to locked queue 'jobs'",)
