"""Exchanges, queues and bindings as frozen values, and the `Topology` that holds them.

Nothing here does I/O: a transport declares a topology. Everything RabbitMQ would refuse,
and everything that could not work as written, is refused here, at construction, with a
message that says what to change. Two values are equal when RabbitMQ would treat declaring
one after the other as the same declaration.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import KW_ONLY, dataclass, field, fields, replace
from enum import StrEnum
from typing import Any

from routing._amqp import INT64, MAX_EXPIRY_MS, encode_table
from routing._frozen import EMPTY, FrozenDict, freeze, thaw
from routing.errors import PropertyError, TopologyError

MAX_NAME_BYTES = 255  # AMQP shortstr


class ExchangeType(StrEnum):
    DIRECT = "direct"
    FANOUT = "fanout"
    TOPIC = "topic"
    HEADERS = "headers"


class QueueType(StrEnum):
    CLASSIC = "classic"
    QUORUM = "quorum"


class Overflow(StrEnum):
    DROP_HEAD = "drop-head"
    REJECT_PUBLISH = "reject-publish"
    REJECT_PUBLISH_DLX = "reject-publish-dlx"


class DestinationType(StrEnum):
    QUEUE = "queue"
    EXCHANGE = "exchange"


X_MATCH_MODES = ("all", "any", "all-with-x", "any-with-x")

DEFAULT_EXCHANGE = ""


def _enum(kind: type[StrEnum], value: Any, what: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise TopologyError(f"{what}: {value!r} is not one of {allowed}") from None


def _utf8_length(what: str, text: str) -> int:
    try:
        return len(text.encode())
    except UnicodeEncodeError:
        raise TopologyError(f"{what} {text[:40]!r} is not valid UTF-8 text (a lone surrogate?)") from None


def _check_name(kind: str, name: object) -> None:
    if not isinstance(name, str):
        raise TopologyError(f"{kind} name must be a string, got {type(name).__name__}")
    if not name:
        raise TopologyError(f"{kind} name is empty: give it a name (server-named queues cannot be bound)")
    if _utf8_length(f"{kind} name", name) > MAX_NAME_BYTES:
        raise TopologyError(
            f"{kind} name {name[:40]!r}... is {len(name.encode())} bytes: RabbitMQ allows {MAX_NAME_BYTES}"
        )
    if name.startswith("amq."):
        raise TopologyError(f"{kind} name {name!r}: the 'amq.' prefix is reserved by RabbitMQ; rename it")


def _check_json_value(where: str, value: Any) -> None:
    """Argument values must be what an AMQP table can carry and JSON can write."""
    if value is None or isinstance(value, str | bool | int | float):
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise TopologyError(f"{where}: table keys must be strings, got {k!r}")
            _check_json_value(f"{where}.{k}", v)
        return
    if isinstance(value, tuple | list):
        for i, v in enumerate(value):
            _check_json_value(f"{where}[{i}]", v)
        return
    raise TopologyError(f"{where}: {type(value).__name__} cannot be sent as an AMQP argument")


def _check_arguments(where: str, arguments: Mapping[str, Any]) -> None:
    for key, value in arguments.items():
        if not isinstance(key, str):
            raise TopologyError(f"{where}: argument names must be strings, got {key!r}")
        _check_json_value(f"{where} argument {key!r}", value)
    _check_encodable(where, arguments)


def _check_encodable(where: str, arguments: Mapping[str, Any]) -> None:
    """What the AMQP table codec refuses (NaN, ints beyond 64 bits, names over 255 bytes,
    lone surrogates) RabbitMQ would answer by closing the connection or never receive."""
    try:
        encode_table(arguments, "")
    except PropertyError as exc:
        raise TopologyError(f"{where}: argument {exc.field.lstrip('.')} {exc.problem}") from None


@dataclass(frozen=True, slots=True)
class Exchange:
    """An exchange. `Exchange("logs", "topic")`; durable unless told otherwise."""

    name: str
    type: ExchangeType = ExchangeType.DIRECT
    _: KW_ONLY
    durable: bool = True
    auto_delete: bool = False
    internal: bool = False
    alternate_exchange: str | None = None
    arguments: Mapping[str, Any] = EMPTY

    def __post_init__(self) -> None:
        _check_name("exchange", self.name)
        set_ = object.__setattr__
        set_(self, "type", _enum(ExchangeType, self.type, f"exchange {self.name!r} type"))
        args = dict(self.arguments)
        _check_arguments(f"exchange {self.name!r}", args)
        if "alternate-exchange" in args:
            given = args.pop("alternate-exchange")
            if self.alternate_exchange not in (None, given):
                raise TopologyError(
                    f"exchange {self.name!r}: alternate_exchange={self.alternate_exchange!r} and "
                    f"arguments['alternate-exchange']={given!r} disagree; give it once"
                )
            set_(self, "alternate_exchange", given)
        if self.alternate_exchange is not None and not isinstance(self.alternate_exchange, str):
            raise TopologyError(f"exchange {self.name!r}: alternate_exchange must be a string")
        set_(self, "arguments", FrozenDict(args))
        _check_encodable(f"exchange {self.name!r}", self.declare_arguments)

    @property
    def declare_arguments(self) -> dict[str, Any]:
        """The `arguments` table as RabbitMQ receives it."""
        args: dict[str, Any] = thaw(self.arguments)
        if self.alternate_exchange is not None:
            args["alternate-exchange"] = self.alternate_exchange
        return args

    def bind(
        self,
        destination: Queue | Exchange | str,
        routing_key: str = "",
        *,
        arguments: Mapping[str, Any] | None = None,
        match: str | None = None,
        headers: Mapping[str, Any] | None = None,
    ) -> Binding:
        """A binding from this exchange. For a headers exchange pass `headers=` and `match=`.

        A plain string destination is taken as a queue name.
        """
        args = dict(arguments or {})
        if headers:
            args.update(headers)
        if match is not None:
            args["x-match"] = match
        kind = DestinationType.EXCHANGE if isinstance(destination, Exchange) else DestinationType.QUEUE
        name = destination if isinstance(destination, str) else destination.name
        return Binding(self.name, name, routing_key, destination_type=kind, arguments=args)


# x-argument name -> (Queue field, the check its value must pass, what the check means,
# the queue types that accept it). Checked against RabbitMQ 3.10's rabbit_amqqueue and
# rabbit_quorum_queue argument validation.
def _non_negative_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= INT64[1]


def _positive_int(v: Any) -> bool:
    return _non_negative_int(v) and v > 0


def _milliseconds(v: Any) -> bool:
    return _non_negative_int(v) and v <= MAX_EXPIRY_MS


_BOTH = (QueueType.CLASSIC, QueueType.QUORUM)
_QUEUE_ARGUMENTS: dict[str, tuple[str, Any, str, tuple[QueueType, ...]]] = {
    # RabbitMQ refuses more than ten years (406 value_too_large; see routing._amqp).
    "x-message-ttl": (
        "message_ttl",
        _milliseconds,
        f"an integer >= 0 and <= {MAX_EXPIRY_MS} (ms, ten years)",
        _BOTH,
    ),
    "x-expires": (
        "expires",
        lambda v: _positive_int(v) and v <= MAX_EXPIRY_MS,
        f"an integer >= 1 and <= {MAX_EXPIRY_MS} (ms, ten years)",
        _BOTH,
    ),
    "x-max-length": ("max_length", _non_negative_int, "an integer >= 0 and < 2**63", _BOTH),
    "x-max-length-bytes": ("max_length_bytes", _non_negative_int, "an integer >= 0 and < 2**63", _BOTH),
    "x-overflow": (
        "overflow",
        lambda v: v in tuple(Overflow),
        "drop-head, reject-publish or reject-publish-dlx",
        _BOTH,
    ),
    "x-dead-letter-exchange": (
        "dead_letter_exchange",
        lambda v: isinstance(v, str),
        "a string",
        _BOTH,
    ),
    "x-dead-letter-routing-key": (
        "dead_letter_routing_key",
        lambda v: isinstance(v, str),
        "a string",
        _BOTH,
    ),
    "x-delivery-limit": (
        "delivery_limit",
        # -1 is "no limit" on 4.0, which gives a quorum queue a limit of 20 unless told so;
        # 3.10 takes -1 as 0 (tests/test_release_defaults.py; routing.targets warns of it).
        lambda v: (type(v) is int and v == -1) or _non_negative_int(v),
        "an integer >= 0 and < 2**63, or -1 for no limit",
        (QueueType.QUORUM,),
    ),
    "x-max-priority": (
        "max_priority",
        lambda v: _positive_int(v) and v <= 255,
        "an integer 1-255",
        (QueueType.CLASSIC,),
    ),
    "x-single-active-consumer": (
        "single_active_consumer",
        lambda v: isinstance(v, bool),
        "true or false",
        _BOTH,
    ),
}
_FIELD_ARGUMENT = {spec[0]: name for name, spec in _QUEUE_ARGUMENTS.items()}
# Raw arguments a 3.10 quorum queue refuses with 406 "invalid arg" (checked on the broker).
_CLASSIC_ONLY_ARGUMENTS = ("x-queue-mode", "x-queue-version", "x-queue-master-locator")


@dataclass(frozen=True, slots=True)
class Queue:
    """A queue, classic or quorum, with RabbitMQ's arguments as typed keywords.

    `Queue("jobs", type="quorum", delivery_limit=5, dead_letter_exchange="dlx")`.
    Raw `arguments` are accepted too; known ones move to their typed field, so both
    spellings give equal queues.
    """

    name: str
    _: KW_ONLY
    type: QueueType = QueueType.CLASSIC
    durable: bool = True
    exclusive: bool = False
    auto_delete: bool = False
    message_ttl: int | None = None
    expires: int | None = None
    max_length: int | None = None
    max_length_bytes: int | None = None
    overflow: Overflow | None = None
    dead_letter_exchange: str | None = None
    dead_letter_routing_key: str | None = None
    delivery_limit: int | None = None
    max_priority: int | None = None
    single_active_consumer: bool | None = None
    arguments: Mapping[str, Any] = EMPTY

    def __post_init__(self) -> None:
        _check_name("queue", self.name)
        where = f"queue {self.name!r}"
        set_ = object.__setattr__
        args = dict(self.arguments)
        _check_arguments(where, args)
        qtype = args.pop("x-queue-type", self.type)
        if "x-queue-type" in self.arguments and self.type not in (QueueType.CLASSIC, qtype):
            raise TopologyError(f"{where}: type={self.type!r} and x-queue-type={qtype!r} disagree")
        qtype = _enum(QueueType, qtype, f"{where} type")
        set_(self, "type", qtype)
        for arg, (attr, check, meaning, types) in _QUEUE_ARGUMENTS.items():
            value = getattr(self, attr)
            if arg in args:
                given = args.pop(arg)
                if value is not None and value != given:
                    raise TopologyError(
                        f"{where}: {attr}={value!r} and {arg}={given!r} disagree; give it once"
                    )
                value = given
            if value is None:
                continue
            if not check(value):
                raise TopologyError(f"{where}: {attr} ({arg}) must be {meaning}, got {value!r}")
            if qtype not in types:
                raise TopologyError(
                    f"{where}: {attr} ({arg}) is for {' and '.join(types)} queues only, not {qtype}"
                )
            if attr == "overflow":
                value = Overflow(value)
            set_(self, attr, value)
        if self.dead_letter_routing_key is not None and self.dead_letter_exchange is None:
            raise TopologyError(f"{where}: dead_letter_routing_key needs a dead_letter_exchange")
        if qtype is QueueType.QUORUM:
            if not self.durable:
                raise TopologyError(f"{where}: quorum queues are always durable; remove durable=False")
            if self.exclusive:
                raise TopologyError(f"{where}: quorum queues cannot be exclusive; use a classic queue")
            if self.auto_delete:
                raise TopologyError(f"{where}: quorum queues cannot be auto-delete; use a classic queue")
            if self.overflow is Overflow.REJECT_PUBLISH_DLX:
                raise TopologyError(f"{where}: quorum queues do not support overflow reject-publish-dlx")
            for arg in _CLASSIC_ONLY_ARGUMENTS:  # 406 "invalid arg" on 3.10.8 and 4.0.5 (checked live)
                if arg in args:
                    raise TopologyError(f"{where}: argument {arg!r} is for classic queues only; remove it")
        set_(self, "arguments", FrozenDict(args))
        _check_encodable(where, self.declare_arguments)  # the typed fields too (a DLX name, say)

    @property
    def declare_arguments(self) -> dict[str, Any]:
        """The `arguments` table as RabbitMQ receives it."""
        args: dict[str, Any] = thaw(self.arguments)
        if self.type is not QueueType.CLASSIC:
            args["x-queue-type"] = str(self.type)
        for attr, arg in _FIELD_ARGUMENT.items():
            value = getattr(self, attr)
            if value is not None:
                args[arg] = str(value) if attr == "overflow" else value
        return args

    @property
    def replicable(self) -> bool:
        """A durable, non-exclusive, non-auto-delete classic queue: work meant to outlive a
        connection, yet kept on one node of a cluster. `Topology.replicated()` makes it quorum."""
        return self.type is QueueType.CLASSIC and self.durable and not self.exclusive and not self.auto_delete


def _as_quorum(queue: Queue) -> Queue:
    """`queue` as a quorum queue with the same settings; `TopologyError` naming the queue
    and the argument when it has one only classic queues take."""
    where = f"queue {queue.name!r} cannot be a quorum queue"
    keep = "remove it, or add this queue to the topology after replicated() so it stays classic"
    if not queue.replicable:
        raise TopologyError(f"{where}: only durable, non-exclusive, non-auto-delete queues can")
    if queue.max_priority is not None:
        raise TopologyError(f"{where}: max_priority (x-max-priority) is for classic queues only; {keep}")
    if queue.overflow is Overflow.REJECT_PUBLISH_DLX:
        raise TopologyError(
            f"{where}: overflow reject-publish-dlx (x-overflow) is for classic queues only; "
            "use reject-publish or drop-head, or add this queue after replicated()"
        )
    for arg in _CLASSIC_ONLY_ARGUMENTS:
        if arg in queue.arguments:
            raise TopologyError(f"{where}: argument {arg!r} is for classic queues only; {keep}")
    return replace(queue, type=QueueType.QUORUM)


@dataclass(frozen=True, slots=True)
class Binding:
    """A binding from exchange `source` to a queue or, with `destination_type`, an exchange."""

    source: str
    destination: str
    routing_key: str = ""
    _: KW_ONLY
    destination_type: DestinationType = DestinationType.QUEUE
    arguments: Mapping[str, Any] = EMPTY

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(
            self,
            "destination_type",
            _enum(DestinationType, self.destination_type, "destination_type"),
        )
        where = f"binding {self.source!r} -> {self.destination!r}"
        if self.source == DEFAULT_EXCHANGE:
            raise TopologyError(f"{where}: the default exchange cannot be bound; it routes by queue name")
        if not isinstance(self.routing_key, str):
            raise TopologyError(f"{where}: routing key must be a string, got {self.routing_key!r}")
        if _utf8_length(f"{where}: routing key", self.routing_key) > MAX_NAME_BYTES:
            raise TopologyError(f"{where}: routing key is over {MAX_NAME_BYTES} bytes")
        _check_arguments(where, self.arguments)
        match = self.arguments.get("x-match")
        if match is not None and match not in X_MATCH_MODES:
            raise TopologyError(f"{where}: x-match {match!r} is not one of {', '.join(X_MATCH_MODES)}")
        set_(self, "arguments", freeze(self.arguments))

    @property
    def sort_key(self) -> tuple[str, str, str, str, str]:
        args = json.dumps(thaw(self.arguments), sort_keys=True)
        return (self.source, self.destination_type, self.destination, self.routing_key, args)

    def describe(self) -> str:
        """`logs -> pager [*.error]`, or the header rule for a headers binding."""
        rule = _rule(self)
        return f"{self.source} -> {self.destination}" + (f" [{rule}]" if rule else "")


def _rule(binding: Binding) -> str:
    if binding.arguments:
        items = ", ".join(f"{k}={json.dumps(thaw(v))}" for k, v in binding.arguments.items())
        return f"{binding.routing_key} {items}".strip() if binding.routing_key else items
    return binding.routing_key


def _implicit(name: str, kind: ExchangeType, internal: bool = False) -> Exchange:
    ex = Exchange.__new__(Exchange)  # bypasses the reserved-name check, on purpose
    for f in fields(Exchange):
        object.__setattr__(ex, f.name, f.default)
    object.__setattr__(ex, "name", name)
    object.__setattr__(ex, "type", kind)
    object.__setattr__(ex, "internal", internal)
    return ex


# The exchanges every vhost has without declaring them; `amq.rabbitmq.trace` is internal.
IMPLICIT_EXCHANGES: Mapping[str, Exchange] = FrozenDict(
    {
        DEFAULT_EXCHANGE: _implicit(DEFAULT_EXCHANGE, ExchangeType.DIRECT),
        "amq.direct": _implicit("amq.direct", ExchangeType.DIRECT),
        "amq.fanout": _implicit("amq.fanout", ExchangeType.FANOUT),
        "amq.topic": _implicit("amq.topic", ExchangeType.TOPIC),
        "amq.headers": _implicit("amq.headers", ExchangeType.HEADERS),
        "amq.match": _implicit("amq.match", ExchangeType.HEADERS),
        "amq.rabbitmq.trace": _implicit("amq.rabbitmq.trace", ExchangeType.TOPIC, internal=True),
    }
)


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


@dataclass(frozen=True, slots=True)
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
    # Filled by `routing.matching` with its per-exchange index, so routing does not
    # rebuild it per message. Not part of the value.
    _cache: dict[str, Any] = field(init=False, repr=False, compare=False, hash=False)

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
        set_(self, "_cache", {})
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

    def check(self, *, rabbitmq: Any = None) -> tuple[Any, ...]:
        """What the release `rabbitmq` ("3.10", "4.0.5"...; default the newest verified) will
        not take: `routing.targets.TargetWarning`s, `refused` where it refuses. See `routing.targets`."""
        from routing.targets import check_topology  # it builds on this module

        return check_topology(self, rabbitmq=rabbitmq)

    def replicated(self) -> Topology:
        """The same topology with every durable classic queue a quorum queue, so it is
        replicated on the nodes of a cluster and survives losing one (its retry and
        dead-letter queues too). Exclusive, auto-delete and non-durable queues stay classic:
        they do not outlive their connection or a restart anyway. A queue with an argument
        only classic queues take (`max_priority`, `x-queue-mode`...) is refused by name.
        RabbitMQ 3.10 dead-letters from quorum queues at-most-once unless a queue sets
        `x-dead-letter-strategy: at-least-once` (with overflow reject-publish)."""
        queues = tuple(_as_quorum(q) if q.replicable else q for q in self.queues)
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
