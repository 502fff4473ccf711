"""RabbitMQ's routing pipeline (`rabbit_exchange:route/2`) over any broker state, with its trace.

`walk()` follows a message from exchange to exchange through the binding tables of a
`RoutingState`: a static topology (`route()`, `explain()`, `routing explain`) or the live
state of the embedded broker. The rules it applies are those of `routing.matching`.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from routing._frozen import thaw
from routing.errors import InternalExchange, UnknownExchange
from routing.indexes import BindingTable, RoutingIndex
from routing.matching import header_outcomes, routing_keys, topic_matches
from routing.profiles import DEFAULT_PROFILE, Profile, profile
from routing.topology import (
    DEFAULT_EXCHANGE,
    IMPLICIT_EXCHANGES,
    Binding,
    DestinationType,
    Exchange,
    ExchangeType,
    Queue,
    Topology,
)

__all__ = ["Explanation", "RoutingState", "Step", "explain", "route", "walk"]


class RoutingState(Protocol):
    """What the pipeline reads of a broker's state, static (a topology) or live (the embedded
    broker): its exchanges, whether a queue exists, and each exchange's binding table."""

    @property
    def profile(self) -> Profile: ...  # the release whose rules it routes by
    def exchange(self, name: str) -> Exchange | None: ...
    def has_queue(self, name: str) -> bool: ...
    def table(self, exchange: str) -> BindingTable: ...


@dataclass(frozen=True, slots=True)
class Step:
    """One line of a trace: a binding tried on an exchange, or an event of the pipeline."""

    exchange: str
    matched: bool
    reason: str
    binding: Binding | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "exchange": self.exchange,
            "matched": self.matched,
            "reason": self.reason,
        }
        if self.binding is not None:
            out["destination"] = self.binding.destination
            out["destination_type"] = str(self.binding.destination_type)
            out["binding_key"] = self.binding.routing_key
            if self.binding.arguments:
                out["arguments"] = thaw(self.binding.arguments)  # plain dicts/lists, for JSON
        return out


@dataclass(frozen=True, slots=True)
class Explanation:
    """Where a message goes, and why: `queues` plus a `trace` of every step."""

    queues: frozenset[str]
    trace: tuple[Step, ...] = field(default=())

    @property
    def matched(self) -> tuple[Step, ...]:
        return tuple(s for s in self.trace if s.matched and s.binding is not None)


def walk(
    broker: RoutingState,
    exchange: str,
    routing_key: str = "",
    headers: Mapping[str, Any] | None = None,
    *,
    trace: list[Step] | None = None,
    keys: Sequence[str] | None = None,
    rabbitmq: str | Profile | None = None,
) -> set[str]:
    """RabbitMQ's routing pipeline over any broker state: the queues a message reaches.

    With `trace`, appends a `Step` for every binding tried and every pipeline event.
    `keys` replaces the routing keys taken from `routing_key` and `CC`/`BCC`: a dead-lettered
    message routes with the keys it was first published with, BCC included. The rules are
    those of `rabbitmq`'s release, else of the broker's own profile.
    """
    release = broker.profile if rabbitmq is None else profile(rabbitmq)
    start = broker.exchange(exchange)
    if start is None:
        raise UnknownExchange(exchange)
    words = routing_keys(routing_key, headers) if keys is None else list(keys)
    if exchange == DEFAULT_EXCHANGE:
        named = {k for k in words if broker.has_queue(k)}
        if trace is not None:
            for k in words:
                ok = k in named
                why = f"default exchange: queue {k!r} " + ("exists" if ok else "does not exist")
                trace.append(Step("", ok, why))
        return named
    queues: set[str] = set()
    seen = {exchange}
    work = [start]
    while work:
        current = work.pop()
        table = broker.table(current.name)
        matched = table.match(words, headers, release)
        if trace is not None:
            _trace_exchange(trace, current, table, matched, words, headers, release)
        for b in matched:
            if b.destination_type is DestinationType.QUEUE:
                queues.add(b.destination)
            else:
                _enqueue(broker, b.destination, seen, work, trace, current.name)
        ae = current.alternate_exchange
        if not matched and ae is not None:
            if trace is not None:
                trace.append(Step(current.name, True, f"nothing matched: alternate exchange {ae!r}"))
            _enqueue(broker, ae, seen, work, trace, current.name)
    return queues


def _enqueue(
    broker: RoutingState,
    name: str,
    seen: set[str],
    work: list[Exchange],
    trace: list[Step] | None,
    via: str,
) -> None:
    if name in seen:
        if trace is not None:
            trace.append(Step(via, False, f"exchange {name!r} already visited: cycle stops here"))
        return
    seen.add(name)
    target = broker.exchange(name)
    if target is not None:
        work.append(target)
    elif trace is not None:
        trace.append(Step(via, False, f"exchange {name!r} does not exist"))


def _trace_exchange(
    trace: list[Step],
    exchange: Exchange,
    table: BindingTable,
    matched: list[Binding],
    keys: list[str],
    headers: Mapping[str, Any] | None,
    release: Profile,
) -> None:
    hits = set(matched)
    if not len(table):
        trace.append(
            Step(exchange.name, False, f"{exchange.type} exchange {exchange.name!r} has no bindings")
        )
    for b in table:
        trace.append(Step(exchange.name, b in hits, _why(exchange.type, b, keys, headers, release), b))


def _why(
    kind: ExchangeType,
    b: Binding,
    keys: list[str],
    headers: Mapping[str, Any] | None,
    release: Profile,
) -> str:
    shown = " or ".join(repr(k) for k in keys)
    if kind is ExchangeType.FANOUT:
        return "fanout: every binding matches"
    if kind is ExchangeType.DIRECT:
        hit = b.routing_key in keys
        return f"key {shown} {'equals' if hit else 'is not'} {b.routing_key!r}"
    if kind is ExchangeType.TOPIC:
        hit = any(topic_matches(b.routing_key, k) for k in keys)
        return f"{b.routing_key!r} {'matches' if hit else 'does not match'} {shown}"
    mode, outcomes = header_outcomes(b.arguments, headers, rabbitmq=release)
    if not outcomes:
        return f"x-match {mode} with no headers to compare: " + (
            "matches everything" if mode.startswith("all") else "matches nothing"
        )
    return f"x-match {mode}: " + ", ".join(f"{k} {o}" for k, o in outcomes)


class _TopologyState(RoutingIndex[Queue]):
    """A static topology seen as broker state, with one binding table per exchange.

    Holds no reference to the topology itself, so that `_STATES` lets it go."""

    profile = DEFAULT_PROFILE  # route() and explain() pass the release they are asked for

    def __init__(self, topology: Topology) -> None:
        exchanges = {**IMPLICIT_EXCHANGES, **{e.name: e for e in topology.exchanges}}
        super().__init__(exchanges, {q.name: q for q in topology.queues})
        grouped: dict[str, list[Binding]] = {}
        for b in topology.bindings:
            grouped.setdefault(b.source, []).append(b)
        for name, bindings in grouped.items():
            self._tables[name] = BindingTable(exchanges[name].type, bindings)


# One state per live topology, built on its first route and kept beside it, not in it: a
# frozen value carries no cache. Keyed by identity (hashing a topology costs a walk of all its
# entities); the weak reference drops the entry when the topology goes.
_STATES: dict[int, tuple[weakref.ref[Topology], _TopologyState]] = {}


def _state(topology: Topology) -> _TopologyState:
    entry = _STATES.get(id(topology))
    if entry is not None and entry[0]() is topology:
        return entry[1]
    state = _TopologyState(topology)
    key = id(topology)

    def forget(ref: weakref.ref[Topology]) -> None:  # no lock: it may run in any thread's GC
        if _STATES.get(key, (None,))[0] is ref:
            _STATES.pop(key, None)

    _STATES[key] = (weakref.ref(topology, forget), state)
    return state


def _publishable(topology: Topology, exchange: str) -> None:
    """RabbitMQ refuses a publish to an internal exchange (403 ACCESS_REFUSED): nothing routes."""
    found = topology.exchange(exchange)
    if found is not None and found.internal:
        raise InternalExchange(exchange)


def route(
    topology: Topology,
    exchange: str,
    routing_key: str = "",
    headers: Mapping[str, Any] | None = None,
    *,
    rabbitmq: str | Profile | None = None,
    by_broker: bool = False,
) -> frozenset[str]:
    """The names of the queues a message published to `exchange` reaches.

    Follows RabbitMQ: the exchange's type, exchange-to-exchange bindings (cycle-safe),
    the alternate exchange of any exchange on the path that matched nothing, the default
    exchange, `CC`/`BCC` headers, one copy per queue. A publish to an internal exchange is
    refused (`InternalExchange`), as RabbitMQ refuses a client's; `by_broker` routes what the
    broker publishes itself (a dead letter), which an internal exchange takes. `rabbitmq`
    picks the release's rules ("3.10", "4.0", "4.0.5"...; default the newest verified profile).
    """
    release = profile(rabbitmq)
    if not by_broker:
        _publishable(topology, exchange)
    return frozenset(walk(_state(topology), exchange, routing_key, headers, rabbitmq=release))


def explain(
    topology: Topology,
    exchange: str,
    routing_key: str = "",
    headers: Mapping[str, Any] | None = None,
    *,
    rabbitmq: str | Profile | None = None,
) -> Explanation:
    """`route()` with a trace: which binding on which exchange matched, and why the others did not."""
    release = profile(rabbitmq)
    _publishable(topology, exchange)
    steps: list[Step] = []
    queues = walk(_state(topology), exchange, routing_key, headers, trace=steps, rabbitmq=release)
    return Explanation(frozenset(queues), tuple(steps))
