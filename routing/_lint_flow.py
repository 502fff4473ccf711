"""The messages a topology is known to carry, queue by queue, for `routing.lint`: what known
publishers and workers send, and where their dead letters go from there. A queue's own
bindings add one thing: a key a direct or wildcard-free topic binding fixes, which its dead
letters keep (checked where they go, not followed further).

A message is routed by `routing.pipeline.route()`; a dead letter keeps its routing key (or
takes the queue's `dead_letter_routing_key`) and loses its per-message TTL, as RabbitMQ's
`rabbit_dead_letter` does. Whether a dead-letter cycle drops a message is decided by the
embedded broker's rule on the `x-death` the release writes, not by a copy of it here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from routing.embedded.dead_lettering import (
    DELIVERY_LIMIT,
    EXPIRED,
    MAXLEN,
    REJECTED,
    Deaths,
    dead_letter_properties,
    dropped_as_cycle,
)
from routing.matching import split_key
from routing.pipeline import route
from routing.profiles import Profile
from routing.properties import Properties
from routing.topology import DestinationType, ExchangeType, Overflow, Queue, QueueType, Topology

__all__ = ["Arrival", "Flow", "effective_delivery_limit"]

_BUDGET = 20_000  # dead-letter hops followed when looking for cycles: a topology is small
_DROPS_AT_MAXLEN = (None, Overflow.DROP_HEAD, Overflow.REJECT_PUBLISH_DLX)


@dataclass(frozen=True, slots=True)
class Arrival:
    """A message as it sits in a queue: the key it is routed by, its headers, and its
    per-message TTL in ms (a dead letter has none)."""

    key: str
    headers: Mapping[str, Any] | None
    expiration: int | None


def effective_delivery_limit(queue: Queue, target: Profile) -> int | None:
    """How many returns a quorum queue takes before it dead-letters (or drops) a message on
    `target`'s release; None for no limit, and for a classic queue."""
    if queue.type is not QueueType.QUORUM:
        return None
    if queue.delivery_limit is None:
        return target.quorum_default_delivery_limit
    if queue.delivery_limit == -1:
        return None if target.quorum_delivery_limit_minus_one_is_none else 0
    return queue.delivery_limit


class Flow:
    """Known arrivals per queue: seeded with `arrive`, then `settle` follows dead letters."""

    def __init__(self, topology: Topology, target: Profile) -> None:
        self._topology = topology
        self._target = target
        self._arrivals: dict[str, set[Arrival]] = {q.name: set() for q in topology.queues}
        self._dead_lettering = [q for q in topology.queues if q.dead_letter_exchange is not None]

    def arrive(self, queue: str, arrival: Arrival) -> None:
        self._arrivals.setdefault(queue, set()).add(arrival)

    def arrivals(self, queue: str) -> frozenset[Arrival]:
        return frozenset(self._arrivals.get(queue, ()))

    def settle(self) -> None:
        """Add the dead letters of every known arrival where they land, until nothing changes."""
        changed = True
        while changed:
            changed = False
            for q in self._dead_lettering:
                for arrival in self._known(q):
                    for letter in self._dead_letters(q, arrival):
                        for target in self._route(q, letter):
                            if letter not in self._arrivals[target]:
                                self._arrivals[target].add(letter)
                                changed = True

    def _known(self, q: Queue) -> list[Arrival | None]:
        """The messages known in `q`, or [None]: one message of which nothing is known."""
        return sorted(self._arrivals[q.name], key=repr) or [None]

    def _dead_letters(self, q: Queue, arrival: Arrival | None) -> list[Arrival]:
        """What `arrival` dead-letters as from `q`; for an unknown message, only what does not
        depend on its key (a dead_letter_routing_key, or a fanout dead-letter exchange)."""
        key = q.dead_letter_routing_key
        if arrival is not None:
            return [Arrival(arrival.key if key is None else key, arrival.headers, None)]
        if key is not None:
            return [Arrival(key, None, None)]
        dlx = self._topology.exchange(q.dead_letter_exchange or "")
        return [Arrival("", None, None)] if dlx is not None and dlx.type is ExchangeType.FANOUT else []

    def _bound_letters(self, q: Queue) -> set[Arrival]:
        """The dead letters `q`'s own bindings vouch for, whoever publishes: a message that
        reached `q` by a direct binding, or a topic binding with no `*` or `#` word, carries
        that binding's key, and keeps it as a dead letter unless `q` has a
        dead_letter_routing_key. Their headers are not known: none when a headers exchange
        could take them on the way from the dead-letter exchange."""
        if q.dead_letter_routing_key is not None or self._headers_downstream(q.dead_letter_exchange or ""):
            return set()
        out = set()
        for b in self._topology.bindings:
            if b.destination_type is not DestinationType.QUEUE or b.destination != q.name:
                continue
            source = self._topology.exchange(b.source)
            if source is None or source.type not in (ExchangeType.DIRECT, ExchangeType.TOPIC):
                continue
            if source.type is ExchangeType.TOPIC and {"*", "#"} & set(split_key(b.routing_key)):
                continue
            out.add(Arrival(b.routing_key, None, None))
        return out

    def _headers_downstream(self, exchange: str) -> bool:
        """Whether a message sent to `exchange` could meet a headers exchange, through
        exchange-to-exchange bindings or alternate exchanges (whatever they match)."""
        seen, work = {exchange}, [exchange]
        while work:
            found = self._topology.exchange(work.pop())
            if found is None:
                continue
            if found.type is ExchangeType.HEADERS:
                return True
            nexts = [
                b.destination
                for b in self._topology.bindings_from(found.name)
                if b.destination_type is DestinationType.EXCHANGE
            ]
            if found.alternate_exchange is not None:
                nexts.append(found.alternate_exchange)
            for name in nexts:
                if name not in seen:
                    seen.add(name)
                    work.append(name)
        return False

    def _route(self, q: Queue, letter: Arrival) -> frozenset[str]:
        exchange = q.dead_letter_exchange or ""
        return route(
            self._topology, exchange, letter.key, letter.headers, rabbitmq=self._target, by_broker=True
        )

    def unroutable_dead_letters(self) -> list[tuple[str, str, str]]:
        """(entity, problem, fix) for each queue whose known dead letters reach no queue."""
        out = []
        for q in self._dead_lettering:
            dlx = q.dead_letter_exchange or ""
            known = {letter for a in self._known(q) for letter in self._dead_letters(q, a)}
            letters = known | self._bound_letters(q)
            lost = sorted({repr(letter.key) for letter in letters if not self._route(q, letter)})
            exchange = self._topology.exchange(dlx)
            if not known and exchange is not None and dlx and not self._topology.bindings_from(dlx):
                lost = [] if exchange.alternate_exchange is not None else ["whatever their key"]
            if not lost:
                continue
            where = f"exchange {dlx!r}" if dlx else "the default exchange"
            keys = lost[0] if lost == ["whatever their key"] else "with key " + ", ".join(lost)
            out.append(
                (
                    f"queue {q.name!r}",
                    f"its dead letters go to {where} {keys}, which routes them to no "
                    "queue: RabbitMQ drops them",
                    "bind a queue to the dead-letter exchange for that key, or set a "
                    "dead_letter_routing_key that reaches one",
                )
            )
        return out

    def dropping_cycles(self) -> list[tuple[str, str, str]]:
        """(entity, problem, fix) for each dead-letter cycle RabbitMQ drops a message in: one
        that can go round it dying of anything but a consumer's reject."""
        found: dict[tuple[str, ...], tuple[str, str, str]] = {}
        budget = [_BUDGET]
        for q in self._dead_lettering:
            for arrival in self._known(q):
                self._walk([q.name], arrival, arrival, found, budget)
        return list(found.values())

    def _walk(
        self,
        path: list[str],
        start: Arrival | None,
        arrival: Arrival | None,
        found: dict[tuple[str, ...], tuple[str, str, str]],
        budget: list[int],
    ) -> None:
        q = self._queue(path[-1])
        if q.dead_letter_exchange is None:
            return
        for letter in self._dead_letters(q, arrival):
            for name in sorted(self._route(q, letter)):
                budget[0] -= 1
                if budget[0] < 0:
                    return
                if name not in path:
                    self._walk([*path, name], start, letter, found, budget)
                    continue
                loop = tuple(path[path.index(name) :])
                turn = loop.index(min(loop))
                canonical = loop[turn:] + loop[:turn]
                if canonical in found:
                    continue
                expires = name == path[0] and start is not None and start.expiration is not None
                reasons = self._dropping_reasons(loop, expires)
                if reasons is not None:
                    found[canonical] = _cycle_finding(loop, reasons)

    def _dropping_reasons(self, loop: tuple[str, ...], first_expires: bool) -> list[str] | None:
        """The deaths (one per queue of `loop`) that get a message dropped as it comes back to
        loop[0], or None when it cannot be: some queue of it only ever loses a message to a
        consumer's reject. The x-death is the one `profile`'s release writes."""
        reasons = [self._worst_death(self._queue(n), first_expires and i == 0) for i, n in enumerate(loop)]
        properties = Properties()
        deaths: Deaths | None = None
        for name, reason in zip(loop, reasons, strict=True):
            q = self._queue(name)
            properties, deaths = dead_letter_properties(
                properties,
                deaths,
                reason=reason,
                queue=name,
                exchange=q.dead_letter_exchange or "",
                routing_key=q.dead_letter_routing_key or "",
                dead_letter_routing_key=q.dead_letter_routing_key,
                profile=self._target,
            )
        x_death = (properties.headers or {}).get("x-death", ())
        return reasons if dropped_as_cycle(loop[0], reasons[-1], x_death) else None

    def _worst_death(self, q: Queue, expires: bool) -> str:
        """What a message can die of in `q` other than a consumer's reject, if anything."""
        if q.message_ttl is not None or expires:
            return EXPIRED
        if (q.max_length is not None or q.max_length_bytes is not None) and q.overflow in _DROPS_AT_MAXLEN:
            return MAXLEN
        if effective_delivery_limit(q, self._target) is not None:
            return DELIVERY_LIMIT
        return REJECTED

    def _queue(self, name: str) -> Queue:
        found = self._topology.queue(name)
        assert found is not None  # routes reach only the topology's queues
        return found


_DIES = {
    EXPIRED: "expires",
    MAXLEN: "is pushed out by max_length",
    DELIVERY_LIMIT: "hits the delivery limit",
    REJECTED: "is rejected",
}


def _cycle_finding(loop: tuple[str, ...], reasons: list[str]) -> tuple[str, str, str]:
    deaths = ", then ".join(f"{_DIES[r]} in {n!r}" for n, r in zip(loop, reasons, strict=True))
    return (
        f"dead-letter cycle {' -> '.join(loop)} -> {loop[0]}",
        f"a message that dies {deaths} is dropped as it comes back to {loop[0]!r}: RabbitMQ drops "
        "a dead letter that returns to a queue it died in with no consumer's reject on the way",
        "dead-letter one of these queues out of the loop (to a parking queue), or let messages "
        "leave it only by a consumer's reject",
    )
