"""Transports: the embedded broker (`memory://`) and RabbitMQ (`amqp://`, `amqps://`)."""

from __future__ import annotations

from routing.errors import ConnectionFailed
from routing.properties import Properties
from routing.transport.base import (
    Consumer,
    ConsumerBase,
    DeclareReport,
    Delivery,
    Outcome,
    Publication,
    Transport,
    TransportBase,
)
from routing.urls import redact, resolve

__all__ = [
    "Consumer",
    "ConsumerBase",
    "DeclareReport",
    "Delivery",
    "Outcome",
    "Properties",
    "Publication",
    "Transport",
    "TransportBase",
    "open_transport",
]


def open_transport(url: str | None = None, *, name: str | None = None) -> Transport:
    """A transport for `url` (else `ROUTING_URL`, else the embedded broker). `name`: the
    connection's, as the broker lists it (and closes it by)."""
    url = resolve(url)
    scheme = url.split(":", 1)[0].lower()
    if scheme == "memory":
        from routing.transport.memory import MemoryTransport

        return MemoryTransport(url, name=name)
    if scheme in ("amqp", "amqps"):
        from routing.transport.rabbitmq import RabbitTransport

        return RabbitTransport(url, name=name)
    raise ConnectionFailed(f"{redact(url)}: unknown scheme {scheme!r}; use memory://, amqp:// or amqps://")
