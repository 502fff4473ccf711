"""What a transport has declared, to declare again after a reconnect: pika-free, for both
RabbitMQ transports (the blocking one and the asyncio one)."""

from __future__ import annotations

from routing.topology import Binding, Exchange, Queue, Topology


class Declared:
    """Exchanges, queues and bindings declared so far, less what was deleted or unbound since."""

    __slots__ = ("bindings", "exchanges", "queues")

    def __init__(self) -> None:
        self.exchanges: dict[str, Exchange] = {}
        self.queues: dict[str, Queue] = {}
        self.bindings: dict[Binding, None] = {}

    def add(self, topology: Topology) -> None:
        self.exchanges.update((e.name, e) for e in topology.exchanges)
        self.queues.update((q.name, q) for q in topology.queues)
        self.bindings.update(dict.fromkeys(topology.bindings))

    def unbound(self, binding: Binding) -> None:
        self.bindings.pop(binding, None)

    def queue_deleted(self, queue: str) -> None:
        """A deleted queue (here or by someone else) is not declared again after a reconnect."""
        self.queues.pop(queue, None)
        for b in [b for b in self.bindings if b.destination_type == "queue" and b.destination == queue]:
            del self.bindings[b]

    def exchange_deleted(self, exchange: str) -> None:
        self.exchanges.pop(exchange, None)
        for b in list(self.bindings):
            if b.source == exchange or (b.destination_type == "exchange" and b.destination == exchange):
                del self.bindings[b]
