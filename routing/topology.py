"""Exchanges, queues and bindings as frozen values, and the `Topology` that holds them.

Nothing here does I/O: a transport declares a topology. Everything RabbitMQ would refuse,
and everything that could not work as written, is refused here, at construction, with a
message that says what to change. Two values are equal when RabbitMQ would treat declaring
one after the other as the same declaration.

The values live in `routing._exchange` (exchanges, bindings), `routing._queue` (queues and
their arguments) and `routing._validate` (the checks they share); import them from here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

from routing._exchange import (
    DEFAULT_EXCHANGE,
    IMPLICIT_EXCHANGES,
    X_MATCH_MODES,
    Binding,
    DestinationType,
    Exchange,
    ExchangeType,
)
from routing._frozen import thaw
from routing._queue import Overflow, Queue, QueueType, as_quorum
from routing._validate import MAX_NAME_BYTES
from routing.errors import TopologyError
from routing.profiles import Profile
from routing.targets import TargetWarning, check_topology

__all__ = [
    "DEFAULT_EXCHANGE",
    "IMPLICIT_EXCHANGES",
    "MAX_NAME_BYTES",
    "X_MATCH_MODES",
    "Binding",
    "DestinationType",
    "Entity",
    "Exchange",
    "ExchangeType",
    "Overflow",
    "Queue",
    "QueueType",
    "Topology",
    "differences",
]


def differences(old: Any, new: Any) -> list[str]:
    """`durable: True != False`-style lines for each field where two values differ."""
    out = []
    for f in fields(old):
        if f.name == "name":
            continue
        a, b = getattr(old, f.name), getattr(new, f.name)
        if a != b:
            out.append(f"{f.name}: {_show(a)} != {_show(b)}")
    return out


def _show(value: Any) -> str:
    return json.dumps(thaw(value)) if not isinstance(value, StrEnum) else str(value)


Entity = Exchange | Queue | Binding


# A weakref slot lets `routing.pipeline` keep its routing index beside a topology, not in it.
@dataclass(frozen=True, slots=True, weakref_slot=True)
class Topology:
    """Exchanges, queues and bindings that make sense together.

    Build it with `Topology.of(...)` from entities in any order. Entities are kept sorted,
    so two topologies with the same contents are equal however they were written.
    """

    exchanges: tuple[Exchange, ...] = ()
    queues: tuple[Queue, ...] = ()
    bindings: tuple[Binding, ...] = ()
    _exchange_index: Mapping[str, Exchange] = field(init=False, repr=False, compare=False)
    _queue_index: Mapping[str, Queue] = field(init=False, repr=False, compare=False)

    @classmethod
    def of(cls, *entities: Entity | Topology | Iterable[Entity]) -> Topology:
        """`Topology.of(logs, pager, logs.bind(pager, "*.error"))`; topologies merge."""
        exchanges: list[Exchange] = []
        queues: list[Queue] = []
        bindings: list[Binding] = []
        pending: list[Any] = list(entities)
        while pending:
            item = pending.pop(0)
            if isinstance(item, Exchange):
                exchanges.append(item)
            elif isinstance(item, Queue):
                queues.append(item)
            elif isinstance(item, Binding):
                bindings.append(item)
            elif isinstance(item, Topology):
                exchanges += item.exchanges
                queues += item.queues
                bindings += item.bindings
            elif isinstance(item, Iterable) and not isinstance(item, str | bytes):
                pending[:0] = list(item)
            else:
                raise TopologyError(f"Topology.of takes exchanges, queues and bindings, not {item!r}")
        return cls(exchanges=tuple(exchanges), queues=tuple(queues), bindings=tuple(bindings))

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        exchanges = _unique("exchange", self.exchanges, Exchange)
        queues = _unique("queue", self.queues, Queue)
        set_(self, "exchanges", tuple(exchanges[n] for n in sorted(exchanges)))
        set_(self, "queues", tuple(queues[n] for n in sorted(queues)))
        set_(self, "_exchange_index", {**IMPLICIT_EXCHANGES, **exchanges})
        set_(self, "_queue_index", queues)
        bindings: dict[Binding, None] = {}
        for b in self.bindings:
            if not isinstance(b, Binding):
                raise TopologyError(f"bindings must be Binding values, not {b!r}")
            bindings[b] = None
        set_(self, "bindings", tuple(sorted(bindings, key=lambda b: b.sort_key)))
        self._check_references()

    def _check_references(self) -> None:
        for b in self.bindings:
            where = f"binding {b.source!r} -> {b.destination!r}"
            source = self._exchange_index.get(b.source)
            if source is None:
                raise TopologyError(f"{where}: no exchange {b.source!r} in the topology; add it")
            if b.destination_type is DestinationType.QUEUE:
                if b.destination not in self._queue_index:
                    raise TopologyError(f"{where}: no queue {b.destination!r} in the topology; add it")
            elif b.destination == DEFAULT_EXCHANGE or b.destination not in self._exchange_index:
                raise TopologyError(f"{where}: no exchange {b.destination!r} in the topology; add it")
        for e in self.exchanges:
            ae = e.alternate_exchange
            if ae is not None and (ae == DEFAULT_EXCHANGE or ae not in self._exchange_index):
                raise TopologyError(
                    f"exchange {e.name!r}: alternate exchange {ae!r} is not in the topology; add it"
                )
        for q in self.queues:
            dlx = q.dead_letter_exchange
            if dlx is not None and dlx not in self._exchange_index:
                raise TopologyError(
                    f"queue {q.name!r}: dead-letter exchange {dlx!r} is not in the topology; add it"
                )

    def exchange(self, name: str) -> Exchange | None:
        """The exchange called `name`, declared or built in (`""`, `amq.*`), or None."""
        return self._exchange_index.get(name)

    def queue(self, name: str) -> Queue | None:
        return self._queue_index.get(name)

    def bindings_from(self, exchange: str) -> tuple[Binding, ...]:
        return tuple(b for b in self.bindings if b.source == exchange)

    def __add__(self, other: Topology) -> Topology:
        return Topology.of(self, other)

    def check(self, *, rabbitmq: str | Profile | None = None) -> tuple[TargetWarning, ...]:
        """What the release `rabbitmq` ("3.10", "4.0.5"...; default the newest verified) will
        not take: `routing.targets.TargetWarning`s, `refused` where it refuses. See `routing.targets`."""
        return check_topology(self, rabbitmq=rabbitmq)

    def replicated(self) -> Topology:
        """The same topology with every durable classic queue a quorum queue, so it is
        replicated on the nodes of a cluster and survives losing one (its retry and
        dead-letter queues too). Exclusive, auto-delete and non-durable queues stay classic:
        they do not outlive their connection or a restart anyway. A queue with an argument
        only classic queues take (`max_priority`, `x-queue-mode`...) is refused by name.
        RabbitMQ 3.10 dead-letters from quorum queues at-most-once unless a queue sets
        `x-dead-letter-strategy: at-least-once` (with overflow reject-publish)."""
        queues = tuple(as_quorum(q) if q.replicable else q for q in self.queues)
        return Topology(exchanges=self.exchanges, queues=queues, bindings=self.bindings)


def _unique(kind: str, items: Iterable[Any], cls: type[Exchange] | type[Queue]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for item in items:
        if not isinstance(item, cls):
            raise TopologyError(f"{kind}s must be {cls.__name__} values, not {item!r}")
        old = seen.get(item.name)
        if old is not None and old != item:
            diff = "; ".join(differences(old, item))
            raise TopologyError(f"{kind} {item.name!r} is given twice with different settings ({diff})")
        seen[item.name] = item
    return seen
