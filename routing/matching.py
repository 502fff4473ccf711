"""RabbitMQ's routing rules as pure functions: topic and headers matching, and `route()`.

Sources, RabbitMQ 3.10 and 4.0: `rabbit_exchange:route/2` (the pipeline), `rabbit_exchange_type_topic`
(the trie walk, in `routing._topic`), `rabbit_exchange_type_headers` (header comparison, in
`routing._headers`), `rabbit_basic:header_routes` (`CC`/`BCC`). The embedded broker, `routing
explain` and the tests all route through here. Where releases differ, the keyword `rabbitmq`
("3.10", "4.0", or a full version) picks the profile (`routing.profiles`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from routing._frozen import thaw
from routing._headers import values_equal
from routing._topic import TopicTrie, split_key, topic_matches
from routing.errors import InternalExchange, RoutingError, UnknownExchange
from routing.profiles import DEFAULT_PROFILE, Profile, profile
from routing.topology import (
    DEFAULT_EXCHANGE,
    Binding,
    DestinationType,
    Exchange,
    ExchangeType,
    Topology,
)

__all__ = [
    "BindingTable",
    "Broker",
    "Explanation",
    "Step",
    "TopicTrie",
    "explain",
    "header_outcomes",
    "header_values_equal",
    "headers_match",
    "route",
    "routing_keys",
    "split_key",
    "topic_matches",
    "walk",
]

# -------------------------------------------------------------- headers


def header_values_equal(
    binding_value: Any, header_value: Any, *, rabbitmq: str | Profile | None = None
) -> bool:
    """Whether a binding value equals a header value as the release decides (see `routing._headers`):
    3.10 has 1 == 1.0 and a timestamp equal to its seconds; 4.0 compares strictly, a timestamp
    header in milliseconds. Inside arrays and tables element types count on both."""
    return values_equal(binding_value, header_value, profile(rabbitmq))


def header_outcomes(
    binding_arguments: Mapping[str, Any],
    headers: Mapping[str, Any] | None,
    *,
    rabbitmq: str | Profile | None = None,
) -> tuple[str, list[tuple[str, str]]]:
    """The x-match mode and, per compared binding key, `equal`, `present`, `missing` or `differs`."""
    release = profile(rabbitmq)
    mode = binding_arguments.get("x-match", "all")
    with_x = mode in ("all-with-x", "any-with-x")
    headers = headers or {}
    outcomes = []
    for key, expected in binding_arguments.items():
        if key == "x-match" or (key.startswith("x-") and not with_x):
            continue
        if key not in headers:
            outcomes.append((key, "missing"))
        elif expected is None:
            outcomes.append((key, "present"))
        elif values_equal(expected, headers[key], release):
            outcomes.append((key, "equal"))
        else:
            outcomes.append((key, "differs"))
    return mode, outcomes


def headers_match(
    binding_arguments: Mapping[str, Any],
    headers: Mapping[str, Any] | None,
    *,
    rabbitmq: str | Profile | None = None,
) -> bool:
    """Whether a headers-exchange binding matches a message's headers, as RabbitMQ decides.

    `all` (the default) needs every compared key to match; `any` needs one. Keys starting with
    `x-` are compared only under `all-with-x`/`any-with-x`. A `None` binding value means the
    header only has to be present. With no compared keys `all` matches and `any` does not.
    How values compare depends on the release: `rabbitmq="3.10"` or `"4.0"` (a full version
    such as "4.0.5" picks its family; the default is the newest verified profile).
    """
    mode, outcomes = header_outcomes(binding_arguments, headers, rabbitmq=rabbitmq)
    hits = [o in ("equal", "present") for _, o in outcomes]
    return any(hits) if mode.startswith("any") else all(hits)


# ------------------------------------------------------------- route


class BindingTable:
    """One exchange's bindings, indexed for its type's rule."""

    __slots__ = ("_by_key", "_list", "_trie", "type")

    def __init__(self, type: ExchangeType, bindings: Iterable[Binding] = ()) -> None:
        self.type = type
        self._list: dict[Binding, None] = {}
        self._by_key: dict[str, dict[Binding, None]] = {}
        self._trie = TopicTrie() if type is ExchangeType.TOPIC else None
        for b in bindings:
            self.add(b)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._list)

    def __len__(self) -> int:
        return len(self._list)

    def add(self, binding: Binding) -> None:
        self._list[binding] = None
        if self._trie is not None:
            self._trie.add(binding)
        elif self.type is ExchangeType.DIRECT:
            self._by_key.setdefault(binding.routing_key, {})[binding] = None

    def remove(self, binding: Binding) -> None:
        self._list.pop(binding, None)
        if self._trie is not None:
            self._trie.remove(binding)
        elif self.type is ExchangeType.DIRECT:
            self._by_key.get(binding.routing_key, {}).pop(binding, None)

    def match(
        self,
        routing_keys: Sequence[str],
        headers: Mapping[str, Any] | None,
        rabbitmq: Profile = DEFAULT_PROFILE,
    ) -> list[Binding]:
        if self.type is ExchangeType.FANOUT:
            return list(self._list)
        if self.type is ExchangeType.HEADERS:
            return [b for b in self._list if headers_match(b.arguments, headers, rabbitmq=rabbitmq)]
        found: list[Binding] = []
        for key in routing_keys:
            if self._trie is not None:
                found += self._trie.match(key)
            else:
                found += self._by_key.get(key, ())
        return found


class Broker(Protocol):
    """What the pipeline needs to know of a broker's state, static or live."""

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


def routing_keys(routing_key: str, headers: Mapping[str, Any] | None) -> list[str]:
    """The key plus the `CC` and `BCC` header keys, which route like extra routing keys."""
    keys = [routing_key]
    for name in ("CC", "BCC"):
        extra = (headers or {}).get(name)
        if extra is None:
            continue
        if not isinstance(extra, list | tuple):
            raise RoutingError(f"header {name} must be an array of strings, got {type(extra).__name__}")
        keys += [k for k in extra if isinstance(k, str)]  # RabbitMQ skips non-string elements
    return list(dict.fromkeys(keys))


def walk(
    broker: Broker,
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
    broker: Broker,
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


class _TopologyBroker:
    """A static topology seen as broker state, with one binding table per exchange."""

    profile = DEFAULT_PROFILE  # route() and explain() pass the release they are asked for

    def __init__(self, topology: Topology) -> None:
        self._topology = topology
        grouped: dict[str, list[Binding]] = {}
        for b in topology.bindings:
            grouped.setdefault(b.source, []).append(b)
        self._tables: dict[str, BindingTable] = {}
        for name, bindings in grouped.items():
            ex = topology.exchange(name)
            assert ex is not None  # the topology checked its references
            self._tables[name] = BindingTable(ex.type, bindings)

    def exchange(self, name: str) -> Exchange | None:
        return self._topology.exchange(name)

    def has_queue(self, name: str) -> bool:
        return self._topology.queue(name) is not None

    def table(self, exchange: str) -> BindingTable:
        table = self._tables.get(exchange)
        if table is None:
            ex = self._topology.exchange(exchange)
            table = self._tables[exchange] = BindingTable(ex.type if ex else ExchangeType.DIRECT)
        return table


def _broker(topology: Topology) -> _TopologyBroker:
    cached = topology._cache.get("broker")
    if cached is None:
        cached = topology._cache["broker"] = _TopologyBroker(topology)
    return cached


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
) -> frozenset[str]:
    """The names of the queues a message published to `exchange` reaches.

    Follows RabbitMQ: the exchange's type, exchange-to-exchange bindings (cycle-safe),
    the alternate exchange of any exchange on the path that matched nothing, the default
    exchange, `CC`/`BCC` headers, one copy per queue. A publish to an internal exchange is
    refused (`InternalExchange`), as RabbitMQ refuses it. `rabbitmq` picks the release's
    rules ("3.10", "4.0", "4.0.5"...; default the newest verified profile).
    """
    release = profile(rabbitmq)
    _publishable(topology, exchange)
    return frozenset(walk(_broker(topology), exchange, routing_key, headers, rabbitmq=release))


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
    queues = walk(_broker(topology), exchange, routing_key, headers, trace=steps, rabbitmq=release)
    return Explanation(frozenset(queues), tuple(steps))
