"""RabbitMQ pub/sub routing in code: topologies, RabbitMQ-exact routing rules, envelopes."""

# Private names: what this module binds is its public surface (tests/test_exported_members.py).
from importlib.metadata import PackageNotFoundError as _PackageNotFoundError
from importlib.metadata import version as _version

from loguru import logger as _logger

from routing.asyncapi import asyncapi_document
from routing.broadcast import Broadcaster, Gap, GapCause, Listener
from routing.definitions import dump_definitions, load_definitions
from routing.diff import TopologyDiff, diff_topology
from routing.envelope import (
    Envelope,
    Rejection,
    build_envelope,
    decode,
    decode_or_reject,
    encode,
    to_properties,
)
from routing.errors import (
    BrokerError,
    ChannelClosed,
    ConnectionFailed,
    ConnectionLost,
    DeclareConflicts,
    DecodeError,
    DefinitionsError,
    EnvelopeError,
    InternalExchange,
    Nacked,
    PreconditionFailed,
    PropertyError,
    PublishUnconfirmed,
    RoutingError,
    SchemaError,
    TopologyError,
    UnknownExchange,
    Unroutable,
    ValidationError,
)
from routing.graph import mermaid
from routing.loading import load_topology
from routing.matching import headers_match, topic_matches
from routing.operations import Consumes, Publishes
from routing.pipeline import Explanation, Step, explain, route
from routing.properties import Properties
from routing.publisher import Publisher, Tally
from routing.schemas import SchemaRegistry
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
from routing.transport import (
    Consumer,
    DeclareReport,
    Delivery,
    Outcome,
    Publication,
    Transport,
    open_transport,
)

# Written once, in pyproject.toml; the installed distribution's metadata carries it here.
try:
    __version__ = _version("routing")
except _PackageNotFoundError:  # run from a source folder that was never installed
    __version__ = "0+unknown"

# A library never decides where its logs go; the CLI (or the application) enables them.
_logger.disable("routing")

__all__ = [
    "Binding",
    "Broadcaster",
    "BrokerError",
    "ChannelClosed",
    "ConnectionFailed",
    "ConnectionLost",
    "Consumer",
    "Consumes",
    "DeclareConflicts",
    "DeclareReport",
    "DecodeError",
    "DefinitionsError",
    "Delivery",
    "DestinationType",
    "Envelope",
    "EnvelopeError",
    "Exchange",
    "ExchangeType",
    "Explanation",
    "Gap",
    "GapCause",
    "InternalExchange",
    "Listener",
    "Nacked",
    "Outcome",
    "Overflow",
    "PreconditionFailed",
    "Properties",
    "PropertyError",
    "Publication",
    "PublishUnconfirmed",
    "Publisher",
    "Publishes",
    "Queue",
    "QueueType",
    "Rejection",
    "RoutingError",
    "SchemaError",
    "SchemaRegistry",
    "Step",
    "Tally",
    "Topology",
    "TopologyDiff",
    "TopologyError",
    "Transport",
    "UnknownExchange",
    "Unroutable",
    "ValidationError",
    "__version__",
    "asyncapi_document",
    "build_envelope",
    "decode",
    "decode_or_reject",
    "diff_topology",
    "dump_definitions",
    "encode",
    "explain",
    "headers_match",
    "load_definitions",
    "load_topology",
    "mermaid",
    "open_transport",
    "route",
    "to_properties",
    "topic_matches",
]
