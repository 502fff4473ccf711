"""Scenarios as data: a topology and a list of steps, run on any transport, observed step by step.

The same scenario runs on the embedded broker and on RabbitMQ; `run()` returns what a client
can see after each step (the step's own result, then every queue's depth), so two runs compare
with `==` and the first differing step is the one to look at. RabbitMQ applies returns,
dead-letters and deliveries asynchronously: after each step on a live broker `run()` waits
until the depths hold still. Message bodies are unique in a scenario ("m1", "m2", ...).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from routing.errors import BrokerError, ChannelClosed
from routing.topology import Binding, Exchange, Queue, Topology
from routing.transport import Delivery, Properties, Transport


@dataclass(frozen=True)
class Publish:
    exchange: str
    key: str
    body: str
    expiration: str | None = None

    def __str__(self) -> str:
        ttl = f", expiration={self.expiration!r}" if self.expiration is not None else ""
        return f"publish({self.exchange!r}, {self.key!r}, {self.body!r}{ttl})"


@dataclass(frozen=True)
class Get:
    queue: str

    def __str__(self) -> str:
        return f"get({self.queue!r})"


@dataclass(frozen=True)
class Settle:
    """Ack, requeue (nack with requeue) or reject (nack without) the n-th delivery still held."""

    held: int
    action: str  # "ack" | "requeue" | "reject"

    def __str__(self) -> str:
        return f"{self.action}(held[{self.held}])"


@dataclass(frozen=True)
class Consume:
    queue: str
    prefetch: int

    def __str__(self) -> str:
        return f"consume({self.queue!r}, prefetch={self.prefetch})"


@dataclass(frozen=True)
class Receive:
    """Take every delivery that has reached consumer n (in the order consumers were started)."""

    consumer: int

    def __str__(self) -> str:
        return f"receive(consumer[{self.consumer}])"


@dataclass(frozen=True)
class Cancel:
    consumer: int

    def __str__(self) -> str:
        return f"cancel(consumer[{self.consumer}])"


@dataclass(frozen=True)
class Sleep:
    ms: int

    def __str__(self) -> str:
        return f"sleep({self.ms}ms)"


@dataclass(frozen=True)
class Together:
    """Steps with nothing observed between them (an observation may expire messages)."""

    steps: tuple[Publish | Get | Settle | Receive | Cancel | Sleep, ...]

    def __str__(self) -> str:
        return " + ".join(str(s) for s in self.steps)


Step = Publish | Get | Settle | Consume | Receive | Cancel | Sleep | Together
Depth = Callable[[str], int]


@dataclass(frozen=True)
class Scenario:
    entities: tuple[Exchange | Queue | Binding, ...]
    steps: tuple[Step, ...]
    queues: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        lines = ["topology:"]
        lines += [f"  {_entity(e)}" for e in self.entities]
        lines += ["steps:"]
        lines += [f"  {i}. {s}" for i, s in enumerate(self.steps)]
        return "\n".join(lines)


def _entity(e: Exchange | Queue | Binding) -> str:
    if isinstance(e, Binding):
        return f"bind {e.describe()}"
    if isinstance(e, Exchange):
        return f"exchange {e.name} ({e.type})"
    args = {k: v for k, v in e.declare_arguments.items()}
    return f"queue {e.name} {args}"


def shape(delivery: Delivery | None) -> Any:
    """What a client sees of a delivery, as comparable plain data (`time` in x-death dropped)."""
    if delivery is None:
        return None
    return (delivery.queue, delivery.body.decode(), delivery.redelivered, _plain(dict(delivery.headers)))


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items() if not isinstance(v, datetime)}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode()
    return value


class Run:
    """One scenario on one transport."""

    def __init__(self, transport: Transport, scenario: Scenario, depth: Depth | None) -> None:
        self.t = transport
        self.depth: Depth = depth or transport.message_count  # type: ignore[attr-defined]
        self.live = depth is not None
        self.scenario = scenario
        self.held: list[Delivery] = []
        self.consumers: list[Any] = []
        self.queues = [e.name for e in scenario.entities if isinstance(e, Queue)]
        # A quorum queue writes through its log before a count shows a message, and a CI
        # machine's disk can stall that for over 100 ms: hold still longer before reading it.
        quorum = any(isinstance(e, Queue) and e.type == "quorum" for e in scenario.entities)
        self.settle = 10 if quorum else 3

    def depths(self) -> list[int]:
        return [self.depth(q) for q in self.queues]

    def quiet(self) -> list[int]:
        """The depths, once they hold still for a while (RabbitMQ settles asynchronously:
        a dead letter through a quorum queue and back takes tens of milliseconds)."""
        if not self.live:
            return self.depths()
        time.sleep(0.03)
        last, still = self.depths(), 0
        for _ in range(60):
            time.sleep(0.03)
            now = self.depths()
            still = still + 1 if now == last else 0
            if still == self.settle:
                break
            last = now
        return last

    def step(self, step: Step) -> Any:
        t = self.t
        if isinstance(step, Publish):
            props = Properties(expiration=step.expiration)
            publication = t.publish(step.exchange, step.key, step.body.encode(), props, mandatory=True)
            t.flush(timeout=3.0)
            code = publication.error.code if isinstance(publication.error, ChannelClosed) else None
            return ("publish", str(publication.outcome), code)
        if isinstance(step, Get):
            try:
                delivery = t.get(step.queue)
            except ChannelClosed as exc:
                return ("get", exc.code)
            if delivery is not None:
                self.held.append(delivery)
            return ("get", shape(delivery))
        if isinstance(step, Settle):
            if not self.held:
                return ("settle", None)
            delivery = self.held.pop(step.held % len(self.held))
            action: Callable[[], None] = {
                "ack": lambda: t.ack(delivery),
                "requeue": lambda: t.nack(delivery, requeue=True),
                "reject": lambda: t.nack(delivery, requeue=False),
            }[step.action]
            action()
            if self.live:
                # The RabbitMQ transport sends a settle with MSG_MORE while deliveries wait in
                # its buffer, and the kernel may hold it up to 200 ms: give it that long.
                time.sleep(0.22)
            return ("settle", step.action, delivery.body.decode())
        if isinstance(step, Consume):
            self.consumers.append(t.consume(step.queue, prefetch=step.prefetch))
            return ("consume",)
        if isinstance(step, Receive):
            if step.consumer >= len(self.consumers):
                return ("receive", None)
            consumer = self.consumers[step.consumer]
            got = []
            wait = 0.15 if self.live else 0.0
            with contextlib.suppress(BrokerError):
                while (delivery := consumer.get(timeout=wait)) is not None:
                    self.held.append(delivery)
                    got.append(shape(delivery))
            return ("receive", got)
        if isinstance(step, Cancel):
            if step.consumer < len(self.consumers):
                self.consumers[step.consumer].cancel()
            return ("cancel",)
        if isinstance(step, Together):
            return ("together", [self.step(s) for s in step.steps])
        time.sleep(step.ms / 1000)
        return ("sleep",)

    def observe(self) -> list[Any]:
        """Each step's result and the depths after it, then every queue drained, in order."""
        seen: list[Any] = []
        for step in self.scenario.steps:
            seen.append((str(step), self.step(step), self.quiet()))
        for consumer in self.consumers:  # one at a time: what one gives back may reach another
            consumer.cancel()
            self.quiet()
        for q in self.queues:
            bodies = []
            while (delivery := self.t.get(q)) is not None:
                self.t.ack(delivery)
                bodies.append(shape(delivery))
            seen.append(("drain", q, bodies))
        return seen


def declare(transport: Transport, scenario: Scenario) -> None:
    transport.declare(Topology.of(*scenario.entities))


def cleanup(transport: Transport, scenario: Scenario) -> None:
    for e in scenario.entities:
        with contextlib.suppress(BrokerError):
            if isinstance(e, Queue):
                transport.delete_queue(e.name)
    for e in scenario.entities:
        with contextlib.suppress(BrokerError):
            if isinstance(e, Exchange):
                transport.delete_exchange(e.name)


def observe(transport: Transport, scenario: Scenario, depth: Depth | None = None) -> list[Any]:
    """Run `scenario`; `depth` reads a live broker's queue depth (None: the embedded broker)."""
    declare(transport, scenario)
    try:
        return Run(transport, scenario, depth).observe()
    finally:
        cleanup(transport, scenario)


def first_difference(a: Sequence[Any], b: Sequence[Any]) -> int | None:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


class LiveDepth:
    """Queue depths on a live broker, by passive declare on a connection of its own."""

    def __init__(self, url: str) -> None:
        import pika

        self._pika = pika
        self._connection = pika.BlockingConnection(pika.URLParameters(url.split("?", 1)[0]))
        self._channel = self._connection.channel()

    def __call__(self, queue: str) -> int:
        if not self._channel.is_open:
            self._channel = self._connection.channel()
        try:
            return int(self._channel.queue_declare(queue, passive=True).method.message_count)
        except self._pika.exceptions.ChannelClosedByBroker:
            return -1  # gone

    def close(self) -> None:
        if self._connection.is_open:
            self._connection.close()
