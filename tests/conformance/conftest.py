"""One conformance suite, two brokers: every scenario here runs on the embedded broker
(`memory://<unique>`) and on the real RabbitMQ (`amqp_url`, marked `broker`).

RabbitMQ is the reference. A scenario talks only through the `Transport` interface, via the
`harness` fixture (a `Harness`): it declares what it needs (deleted at the end), and reads
queues with short polls, because on RabbitMQ dead-lettering and requeues are asynchronous.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Iterator, Mapping
from typing import Any, Self

import pytest

from routing.embedded import forget
from routing.errors import BrokerError, RoutingError
from routing.topology import Binding, Exchange, Queue, Topology
from routing.transport import Delivery, Transport, open_transport

from .bridge import BlockingTransport

POLL = 0.02
WAIT = 3.0  # longest a scenario waits for a message that should come


def plain(value: Any) -> Any:
    """Headers as plain data (FrozenDict -> dict, tuple -> list, bytes -> str), to compare."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode()
    return value


class Harness:
    """A transport on the broker under test, and the few steps every scenario repeats."""

    def __init__(self, kind: str, url: str, unique: str) -> None:
        self.kind = kind  # "memory" or "rabbitmq", with "-asyncio" for the asyncio transports
        self.url = url
        self.unique = unique
        self._open = BlockingTransport.open if kind.endswith("-asyncio") else open_transport
        self.t: Transport = self._open(url)
        self._queues: list[str] = []
        self._exchanges: list[str] = []
        self._others: list[Transport] = []

    def name(self, suffix: str) -> str:
        return f"{self.unique}.{suffix}"

    def declare(self, *entities: Exchange | Queue | Binding) -> Topology:
        topology = Topology.of(*entities)
        self._exchanges += [x.name for x in topology.exchanges if x.name not in self._exchanges]
        for queue in topology.queues:
            self.delete_at_end(queue.name)
        self.t.declare(topology)
        return topology

    def delete_at_end(self, queue: str) -> None:
        """Delete `queue` at the end too (one declared some other way: on another connection)."""
        if queue not in self._queues:
            self._queues.append(queue)

    def connect(self) -> Transport:
        """Another connection to the same broker (closed at the end)."""
        other = self._open(self.url)
        self._others.append(other)
        return other

    def get(self, queue: str, wait: float = WAIT) -> Delivery | None:
        """The next message of `queue`, polling up to `wait` seconds; None if none came."""
        deadline = time.monotonic() + wait
        while True:
            delivery = self.t.get(queue)
            if delivery is not None or time.monotonic() >= deadline:
                return delivery
            time.sleep(POLL)

    def take(self, queue: str, wait: float = WAIT) -> Delivery:
        delivery = self.get(queue, wait)
        assert delivery is not None, f"nothing arrived in {queue!r} within {wait}s"
        self.t.ack(delivery)
        return delivery

    def drain(self, queue: str) -> list[bytes]:
        """Every ready message's body, in order, acked."""
        bodies = []
        while (delivery := self.t.get(queue)) is not None:
            self.t.ack(delivery)
            bodies.append(delivery.body)
        return bodies

    def publish_all(self, exchange: str, messages: list[tuple[str, bytes]]) -> None:
        """Publish (routing key, body) pairs and wait until each is confirmed."""
        for key, body in messages:
            self.t.publish(exchange, key, body)
        assert self.t.flush(timeout=WAIT) == []

    @classmethod
    @contextlib.contextmanager
    def opened(cls, kind: str, url: str, unique: str) -> Iterator[Self]:
        """A harness for a fixture to yield: closed at the end, and an embedded broker forgotten."""
        harness = cls(kind, url, unique)
        try:
            yield harness
        finally:
            harness.close()
            if kind.startswith("memory"):
                forget(url)

    def close(self) -> None:
        for other in self._others:
            other.close()
        cleaner = self.t
        if cleaner.closed:
            cleaner = open_transport(self.url)
        try:
            for queue in self._queues:
                with contextlib.suppress(BrokerError):  # gone already (exclusive, auto-delete)
                    cleaner.delete_queue(queue)
            for exchange in self._exchanges:
                with contextlib.suppress(BrokerError):
                    cleaner.delete_exchange(exchange)
        finally:
            cleaner.close()
            self.t.close()


@functools.cache
def _embedded_takes_a_profile() -> bool:
    """Whether `memory://NAME?rabbitmq=VERSION` picks a profile: the query is then no part of
    the broker's name, and an unknown version is refused. (Before, the query was part of the
    name: the URL worked, with the default profile.)"""
    from routing.embedded import registry

    name = getattr(registry, "broker_name", None)
    if name is not None and "?" not in name("memory://routing-conformance-probe?rabbitmq=3.10"):
        return True
    url = "memory://routing-conformance-probe?rabbitmq=0.0"
    try:
        open_transport(url).close()
    except (RoutingError, ValueError):
        return True
    forget(url)
    return False


def embedded_url(name: str, rabbitmq_profile: str | None) -> str:
    """The embedded broker `name`, behaving as the live broker's release does when one answers
    (`?rabbitmq=3.10` / `4.0`), else with its default profile."""
    if rabbitmq_profile is None or not _embedded_takes_a_profile():
        return f"memory://{name}"
    return f"memory://{name}?rabbitmq={rabbitmq_profile}"


def _live_profile(request: pytest.FixtureRequest) -> str | None:
    """The live broker's profile ("3.10", "4.0"); None when no broker answers (a developer's
    machine without RabbitMQ still runs the embedded scenarios)."""
    try:
        return str(request.getfixturevalue("rabbitmq_profile"))
    except pytest.skip.Exception:
        return None


@pytest.fixture(
    params=[
        pytest.param("memory", marks=pytest.mark.conformance),
        pytest.param("rabbitmq", marks=[pytest.mark.broker, pytest.mark.conformance]),
        pytest.param("memory-asyncio", marks=pytest.mark.conformance),
        pytest.param("rabbitmq-asyncio", marks=[pytest.mark.broker, pytest.mark.conformance]),
    ]
)
def harness(request: pytest.FixtureRequest, unique: str) -> Iterator[Harness]:
    """The transport under test: the embedded broker (with the live broker's profile), then
    RabbitMQ, each through the blocking transport and then the asyncio one."""
    if request.param.startswith("memory"):
        url = embedded_url(unique, _live_profile(request))
    else:
        url = request.getfixturevalue("amqp_url")
    with Harness.opened(request.param, url, unique) as harness:
        yield harness
