"""RabbitMQ's routing rules as pure functions: topic and headers matching, and `route()`.

Sources, RabbitMQ 3.10: `rabbit_exchange:route/2` (the pipeline), `rabbit_exchange_type_topic`
(the trie walk), `rabbit_exchange_type_headers` (header comparison), `rabbit_basic:header_routes`
(`CC`/`BCC`). The embedded broker, `routing explain` and the tests all route through here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from routing._frozen import thaw
from routing.errors import RoutingError, UnknownExchange
from routing.topology import (
    DEFAULT_EXCHANGE,
    Binding,
    DestinationType,
    Exchange,
    ExchangeType,
    Topology,
)

# ---------------------------------------------------------------- topic


def split_key(key: str) -> list[str]:
    """Words of a topic key: `""` is zero words, `"a..b"` is three (the middle one empty)."""
    return key.split(".") if key else []


def topic_matches(binding_key: str, routing_key: str) -> bool:
    """Whether a topic binding key matches a routing key, word by word.

    `*` is exactly one word, `#` zero or more. Runs the binding key as a small automaton
    over the routing key's words, so `#`-heavy keys cost polynomial time, not exponential.
    """
    pattern = split_key(binding_key)
    end = len(pattern)

    def closure(states: set[int]) -> set[int]:
        # `#` may match zero words: a state sitting on `#` is also the state after it.
        out = set(states)
        for i in states:
            while i < end and pattern[i] == "#":
                i += 1
                out.add(i)
        return out

    states = closure({0})
    for word in split_key(routing_key):
        step = set()
        for i in states:
            if i < end:
                p = pattern[i]
                if p == "#":
                    step.add(i)
                elif p == "*" or p == word:
                    step.add(i + 1)
        if not step:
            return False
        states = closure(step)
    return end in states


class _Node:
    __slots__ = ("bindings", "children")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.bindings: list[Binding] = []


class TopicTrie:
    """Topic bindings in a trie of words: matching costs grow with the key, not the bindings."""

    __slots__ = ("_root", "_size")

    def __init__(self, bindings: Iterable[Binding] = ()) -> None:
        self._root = _Node()
        self._size = 0
        for b in bindings:
            self.add(b)

    def __len__(self) -> int:
        return self._size

    def add(self, binding: Binding) -> None:
        node = self._root
        for word in split_key(binding.routing_key):
            child = node.children.get(word)
            if child is None:
                child = node.children[word] = _Node()
            node = child
        if binding not in node.bindings:
            node.bindings.append(binding)
            self._size += 1

    def remove(self, binding: Binding) -> None:
        path = [self._root]
        for word in split_key(binding.routing_key):
            nxt = path[-1].children.get(word)
            if nxt is None:
                return
            path.append(nxt)
        if binding not in path[-1].bindings:
            return
        path[-1].bindings.remove(binding)
        self._size -= 1
        words = split_key(binding.routing_key)
        # Prune empty branches so removed bindings leave nothing to walk.
        for depth in range(len(words), 0, -1):
            node = path[depth]
            if node.bindings or node.children:
                break
            del path[depth - 1].children[words[depth - 1]]

    def match(self, routing_key: str) -> list[Binding]:
        words = split_key(routing_key)
        n = len(words)
        found: list[Binding] = []
        seen: set[tuple[int, int]] = set()
        stack: list[tuple[_Node, int]] = [(self._root, 0)]
        while stack:
            node, i = stack.pop()
            mark = (id(node), i)
            if mark in seen:
                continue
            seen.add(mark)
            if i == n:
                found.extend(node.bindings)
            children = node.children
            if not children:
                continue
            hash_node = children.get("#")
            if hash_node is not None:
                # `#` swallows zero or more of the remaining words.
                stack.extend((hash_node, j) for j in range(i, n + 1))
            if i < n:
                exact = children.get(words[i])
                if exact is not None:
                    stack.append((exact, i + 1))
                star = children.get("*")
                if star is not None and star is not exact:
                    stack.append((star, i + 1))
        # A binding is reached once per path; report it once (by identity: hashing is slower).
        return list({id(b): b for b in found}.values())


# -------------------------------------------------------------- headers


def _is_void(value: Any) -> bool:
    return value is None


def _same_type(a: Any, b: Any) -> bool:
    kind = (bool, int, float, str, bytes, type(None), Mapping, list | tuple)
    for k in kind:
        if isinstance(a, k):
            return isinstance(b, k)
    return type(a) is type(b)


def _strict_equal(a: Any, b: Any) -> bool:
    """Equality of values inside AMQP arrays and tables, which carry their type tags."""
    if not _same_type(a, b):
        return False
    if isinstance(a, Mapping):
        return len(a) == len(b) and all(
            ka == kb and _strict_equal(va, vb)
            for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=True)
        )
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_strict_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def header_values_equal(binding_value: Any, header_value: Any) -> bool:
    """RabbitMQ 3.10 compares header values with Erlang `==`: 1 equals 1.0 at the top level,
    but `true` is not 1, and arrays and tables compare their elements' types too."""
    if isinstance(binding_value, bool) or isinstance(header_value, bool):
        return type(binding_value) is type(header_value) and binding_value == header_value
    numbers = (int, float)
    if isinstance(binding_value, numbers) and isinstance(header_value, numbers):
        return binding_value == header_value
    return _strict_equal(binding_value, header_value)


def header_outcomes(
    binding_arguments: Mapping[str, Any], headers: Mapping[str, Any] | None
) -> tuple[str, list[tuple[str, str]]]:
    """The x-match mode and, per compared binding key, `equal`, `present`, `missing` or `differs`."""
    mode = binding_arguments.get("x-match", "all")
    with_x = mode in ("all-with-x", "any-with-x")
    headers = headers or {}
    outcomes = []
    for key, expected in binding_arguments.items():
        if key == "x-match" or (key.startswith("x-") and not with_x):
            continue
        if key not in headers:
            outcomes.append((key, "missing"))
        elif _is_void(expected):
            outcomes.append((key, "present"))
        elif header_values_equal(expected, headers[key]):
            outcomes.append((key, "equal"))
        else:
            outcomes.append((key, "differs"))
    return mode, outcomes


def headers_match(binding_arguments: Mapping[str, Any], headers: Mapping[str, Any] | None) -> bool:
    """Whether a headers-exchange binding matches a message's headers, as RabbitMQ 3.10 decides.

    `all` (the default) needs every compared key to match; `any` needs one. Keys starting with
    `x-` are compared only under `all-with-x`/`any-with-x`. A `None` binding value means the
    header only has to be present. With no compared keys `all` matches and `any` does not.
    """
    mode, outcomes = header_outcomes(binding_arguments, headers)
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

    def match(self, routing_keys: Sequence[str], headers: Mapping[str, Any] | None) -> list[Binding]:
        if self.type is ExchangeType.FANOUT:
            return list(self._list)
        if self.type is ExchangeType.HEADERS:
            return [b for b in self._list if headers_match(b.arguments, headers)]
        found: list[Binding] = []
        for key in routing_keys:
            if self._trie is not None:
                found += self._trie.match(key)
            else:
                found += self._by_key.get(key, ())
        return found


class Broker(Protocol):
    """What the pipeline needs to know of a broker's state, static or live."""

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
) -> set[str]:
    """RabbitMQ's routing pipeline over any broker state: the queues a message reaches.

    With `trace`, appends a `Step` for every binding tried and every pipeline event.
    `keys` replaces the routing keys taken from `routing_key` and `CC`/`BCC`: a dead-lettered
    message routes with the keys it was first published with, BCC included.
    """
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
        matched = table.match(words, headers)
        if trace is not None:
            _trace_exchange(trace, current, table, matched, words, headers)
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
) -> None:
    hits = set(matched)
    if not len(table):
        trace.append(
            Step(exchange.name, False, f"{exchange.type} exchange {exchange.name!r} has no bindings")
        )
    for b in table:
        trace.append(Step(exchange.name, b in hits, _why(exchange.type, b, keys, headers), b))


def _why(kind: ExchangeType, b: Binding, keys: list[str], headers: Mapping[str, Any] | None) -> str:
    shown = " or ".join(repr(k) for k in keys)
    if kind is ExchangeType.FANOUT:
        return "fanout: every binding matches"
    if kind is ExchangeType.DIRECT:
        hit = b.routing_key in keys
        return f"key {shown} {'equals' if hit else 'is not'} {b.routing_key!r}"
    if kind is ExchangeType.TOPIC:
        hit = any(topic_matches(b.routing_key, k) for k in keys)
        return f"{b.routing_key!r} {'matches' if hit else 'does not match'} {shown}"
    mode, outcomes = header_outcomes(b.arguments, headers)
    if not outcomes:
        return f"x-match {mode} with no headers to compare: " + (
            "matches everything" if mode.startswith("all") else "matches nothing"
        )
    return f"x-match {mode}: " + ", ".join(f"{k} {o}" for k, o in outcomes)


class _TopologyBroker:
    """A static topology seen as broker state, with one binding table per exchange."""

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


def route(
    topology: Topology,
    exchange: str,
    routing_key: str = "",
    headers: Mapping[str, Any] | None = None,
) -> frozenset[str]:
    """The names of the queues a message published to `exchange` reaches.

    Follows RabbitMQ: the exchange's type, exchange-to-exchange bindings (cycle-safe),
    the alternate exchange of any exchange on the path that matched nothing, the default
    exchange, `CC`/`BCC` headers, one copy per queue.
    """
    return frozenset(walk(_broker(topology), exchange, routing_key, headers))


def explain(
    topology: Topology,
    exchange: str,
    routing_key: str = "",
    headers: Mapping[str, Any] | None = None,
) -> Explanation:
    """`route()` with a trace: which binding on which exchange matched, and why the others did not."""
    steps: list[Step] = []
    queues = walk(_broker(topology), exchange, routing_key, headers, trace=steps)
    return Explanation(frozenset(queues), tuple(steps))
