"""The embedded broker: RabbitMQ's broker state and semantics, in process.

`routing.transport.memory.MemoryTransport` is the way in; `broker_for(url)` gives the broker
a `memory://` URL names, and `forget(url)` drops it (tests).
"""

from routing.embedded.broker import EmbeddedBroker
from routing.embedded.registry import broker_for, forget

__all__ = ["EmbeddedBroker", "broker_for", "forget"]
