"""Every error the toolkit raises, under one base class.

    RoutingError
    ├── TopologyError              an invalid topology, found before any I/O
    │   ├── DefinitionsError       a definitions file or topology reference that cannot be read
    │   └── ProfileError           a RabbitMQ version no profile covers (routing.profiles)
    ├── PropertyError              a property, header or routing key AMQP cannot carry or RabbitMQ refuses
    ├── UnknownExchange            routing or publishing to an exchange that does not exist
    ├── InternalExchange           publishing to an internal exchange: RabbitMQ refuses it (403)
    ├── BadInput                   what a person typed into `routing ui`'s page, and why it cannot be used
    ├── EnvelopeError              a message that is not a valid envelope
    │   ├── DecodeError            not UTF-8, not JSON, too large, or the wrong shape
    │   ├── SchemaError            a schema file that cannot be loaded or is itself invalid
    │   └── ValidationError        fails its JSON Schema; `.problems` names every failing path
    └── BrokerError                the broker, or the way to it, failed
        ├── ConnectionFailed       unreachable, refused credentials, missing vhost, TLS failure
        ├── ConnectionLost         an established connection dropped
        ├── ChannelClosed          the broker closed the channel (`.code`, `.text`)
        │   └── PreconditionFailed 406: redeclared with other settings
        ├── DeclareConflicts       several entities differ from what the broker has (`.conflicts`)
        ├── Unroutable             a mandatory message was returned: no queue for its exchange and key
        ├── Nacked                 the broker refused a published message (`basic.nack`)
        └── PublishUnconfirmed     a publish whose confirm never came (connection lost in between)

Messages never contain a password: URLs are shown through `routing.urls.redact()`.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "BadInput",
    "BrokerError",
    "ChannelClosed",
    "ConnectionFailed",
    "ConnectionLost",
    "DeclareConflicts",
    "DecodeError",
    "DefinitionsError",
    "EnvelopeError",
    "InternalExchange",
    "Nacked",
    "PreconditionFailed",
    "PropertyError",
    "PublishUnconfirmed",
    "RoutingError",
    "SchemaError",
    "TopologyError",
    "UnknownExchange",
    "Unroutable",
    "ValidationError",
]


class RoutingError(Exception):
    """The base of every error raised by `routing`."""


class TopologyError(RoutingError, ValueError):
    """A topology RabbitMQ would refuse, or one that cannot work as written."""


class DefinitionsError(TopologyError):
    """A definitions file or a `module:attribute` reference that cannot be read."""


class PropertyError(RoutingError, ValueError):
    """A message property, header value or routing key that AMQP cannot carry or RabbitMQ
    refuses, found before anything is sent. `field` names it: `priority`, `routing_key`,
    `headers.a.b[2]` (the path inside nested values)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field = field
        self.problem = problem


class UnknownExchange(RoutingError, LookupError):
    """An exchange name that the topology or broker does not have."""

    def __init__(self, name: str, message: str | None = None) -> None:
        super().__init__(message or f"unknown exchange {name!r}")
        self.name = name


class InternalExchange(RoutingError):
    """A publish to an internal exchange: RabbitMQ refuses it with 403 ACCESS_REFUSED."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"exchange {name!r} is internal: RabbitMQ refuses a publish to it (403 ACCESS_REFUSED); "
            "publish to an exchange bound to it"
        )
        self.name = name


class BadInput(RoutingError, ValueError):
    """Input from `routing ui`'s page that cannot be used (a header that is not NAME=VALUE, a
    queue the topology does not have); the page shows the message."""


class EnvelopeError(RoutingError, ValueError):
    """A message that is not a valid envelope."""


class DecodeError(EnvelopeError):
    """A body that is not UTF-8, not JSON, too large, or not a JSON object."""


class SchemaError(EnvelopeError):
    """A schema file that cannot be loaded, or that is not a valid JSON Schema."""


class ValidationError(EnvelopeError):
    """An envelope that fails its schema. `problems` holds one line per failure."""

    def __init__(self, problems: Sequence[str], *, path: str = "") -> None:
        self.problems = tuple(problems)
        self.path = path
        super().__init__("; ".join(self.problems))


class BrokerError(RoutingError):
    """The broker, or the connection to it, failed."""


class ConnectionFailed(BrokerError, ConnectionError):
    """No connection could be made: unreachable host, bad credentials, missing vhost, TLS."""


class ConnectionLost(BrokerError, ConnectionError):
    """An established connection dropped."""


class ChannelClosed(BrokerError):
    """The broker closed the channel with an AMQP reply code."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"{code} {text}")
        self.code = code
        self.text = text


class PreconditionFailed(ChannelClosed):
    """406 PRECONDITION_FAILED: an entity exists with other settings."""


class DeclareConflicts(BrokerError):
    """Entities the broker already has with other settings, every one of them."""

    def __init__(self, conflicts: Sequence[str], report: object = None) -> None:
        self.conflicts = tuple(conflicts)
        self.report = report  # the transport's DeclareReport: what was declared all the same
        super().__init__("\n".join(self.conflicts))


class Unroutable(BrokerError):
    """A mandatory message came back: no queue is bound for its exchange and routing key."""

    def __init__(self, exchange: str, routing_key: str) -> None:
        shown = exchange or "(default exchange)"
        super().__init__(f"unroutable: no queue bound to exchange {shown!r} for key {routing_key!r}")
        self.exchange = exchange
        self.routing_key = routing_key


class Nacked(BrokerError):
    """The broker answered a publish with `basic.nack`."""


class PublishUnconfirmed(BrokerError):
    """A publish whose confirm never came: it may or may not have reached the queue."""
