"""Exchanges and bindings as frozen values, and the exchanges every vhost has."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, fields
from enum import StrEnum
from typing import Any

from routing._frozen import EMPTY, FrozenDict, freeze, thaw
from routing._queue import Queue
from routing._validate import (
    MAX_NAME_BYTES,
    check_arguments,
    check_encodable,
    check_name,
    enum_value,
    utf8_length,
)
from routing.errors import TopologyError


class ExchangeType(StrEnum):
    DIRECT = "direct"
    FANOUT = "fanout"
    TOPIC = "topic"
    HEADERS = "headers"


class DestinationType(StrEnum):
    QUEUE = "queue"
    EXCHANGE = "exchange"


X_MATCH_MODES = ("all", "any", "all-with-x", "any-with-x")

DEFAULT_EXCHANGE = ""


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
        check_name("exchange", self.name)
        set_ = object.__setattr__
        set_(self, "type", enum_value(ExchangeType, self.type, f"exchange {self.name!r} type"))
        args = dict(self.arguments)
        check_arguments(f"exchange {self.name!r}", args)
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
        check_encodable(f"exchange {self.name!r}", self.declare_arguments)

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
            enum_value(DestinationType, self.destination_type, "destination_type"),
        )
        where = f"binding {self.source!r} -> {self.destination!r}"
        if self.source == DEFAULT_EXCHANGE:
            raise TopologyError(f"{where}: the default exchange cannot be bound; it routes by queue name")
        if not isinstance(self.routing_key, str):
            raise TopologyError(f"{where}: routing key must be a string, got {self.routing_key!r}")
        if utf8_length(f"{where}: routing key", self.routing_key) > MAX_NAME_BYTES:
            raise TopologyError(f"{where}: routing key is over {MAX_NAME_BYTES} bytes")
        check_arguments(where, self.arguments)
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
