"""RabbitMQ pub/sub routing in code: topologies, RabbitMQ-exact routing rules, envelopes."""

from loguru import logger

from routing.errors import (
    BrokerError,
    ChannelClosed,
    ConnectionFailed,
    ConnectionLost,
    DeclareConflicts,
    DecodeError,
    DefinitionsError,
    EnvelopeError,
    Nacked,
    PreconditionFailed,
    PublishUnconfirmed,
    RoutingError,
    SchemaError,
    TopologyError,
    UnknownExchange,
    Unroutable,
    ValidationError,
)
from routing.matching import Explanation, Step, explain, headers_match, route, topic_matches
from routing.topology import (
    Binding,
    DestinationType,
    Exchange,
    ExchangeType,
    Overflow,
    Queue,
    QueueType,
    Topology,
)

__version__ = "0.1.0"

# A library never decides where its logs go; the CLI (or the application) enables them.
logger.disable("routing")

__all__ = [
    "Binding",
    "BrokerError",
    "ChannelClosed",
    "ConnectionFailed",
    "ConnectionLost",
    "DeclareConflicts",
    "DecodeError",
    "DefinitionsError",
    "DestinationType",
    "EnvelopeError",
    "Exchange",
    "ExchangeType",
    "Explanation",
    "Nacked",
    "Overflow",
    "PreconditionFailed",
    "PublishUnconfirmed",
    "Queue",
    "QueueType",
    "RoutingError",
    "SchemaError",
    "Step",
    "Topology",
    "TopologyError",
    "UnknownExchange",
    "Unroutable",
    "ValidationError",
    "__version__",
    "explain",
    "headers_match",
    "route",
    "topic_matches",
]
