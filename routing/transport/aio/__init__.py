"""Asyncio transports: the embedded broker (`memory://`) and RabbitMQ (`amqp://`, `amqps://`),
for one event loop. `routing.aio.open_transport(url)` picks one; see `base` for the interface."""

from __future__ import annotations

from routing.transport.aio.base import (
    AsyncConsumer,
    AsyncConsumerBase,
    AsyncPublication,
    AsyncTransport,
    AsyncTransportBase,
)

__all__ = [
    "AsyncConsumer",
    "AsyncConsumerBase",
    "AsyncPublication",
    "AsyncTransport",
    "AsyncTransportBase",
]
