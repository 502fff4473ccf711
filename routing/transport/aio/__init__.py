"""Asyncio transports: the embedded broker (`memory://`) and RabbitMQ (`amqp://`, `amqps://`),
for one event loop. See `base` for the interface.

    transport = await open_transport(url)        # or:
    async with open_transport(url) as transport:
        ...
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from types import TracebackType
from typing import Any

from routing.errors import ConnectionFailed
from routing.transport.aio.base import (
    AsyncConsumer,
    AsyncConsumerBase,
    AsyncPublication,
    AsyncTransport,
    AsyncTransportBase,
)
from routing.urls import redact, resolve, split_urls

__all__ = [
    "AsyncConsumer",
    "AsyncConsumerBase",
    "AsyncPublication",
    "AsyncTransport",
    "AsyncTransportBase",
    "Opening",
    "open_transport",
]


class Opening:
    """What `open_transport` returns: await it for the transport, or use it as an async
    context manager (which closes the transport on the way out)."""

    def __init__(self, url: str | Sequence[str] | None, options: dict[str, Any]) -> None:
        self._url = url
        self._options = options
        self._transport: AsyncTransport | None = None

    async def _open(self) -> AsyncTransport:
        urls = [resolve(self._url)] if self._url is None or isinstance(self._url, str) else list(self._url)
        first = split_urls(urls[0])[0] if urls and urls[0] else ""
        scheme = first.split(":", 1)[0].lower()
        if scheme == "memory":
            from routing.transport.aio.memory import AsyncMemoryTransport

            options = dict(self._options)
            name = options.pop("name", None)  # the connection's, as the broker closes it by
            if options:
                raise TypeError(f"memory:// takes only name=, got {', '.join(sorted(options))}")
            return await AsyncMemoryTransport.open(urls[0], name=name)
        if scheme in ("amqp", "amqps"):
            from routing.transport.rabbitmq import AsyncRabbitTransport

            target: str | list[str] = urls[0] if len(urls) == 1 else urls
            return await AsyncRabbitTransport.open(target, **self._options)
        raise ConnectionFailed(
            f"{redact(first)}: unknown scheme {scheme!r}; use memory://, amqp:// or amqps://"
        )

    def __await__(self) -> Generator[Any, None, AsyncTransport]:
        return self._open().__await__()

    async def __aenter__(self) -> AsyncTransport:
        self._transport = await self._open()
        return self._transport

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._transport is not None:
            await self._transport.close()


def open_transport(url: str | Sequence[str] | None = None, **options: Any) -> Opening:
    """An asyncio transport for `url` (else `ROUTING_URL`, else the embedded broker): await
    it, or `async with` it. `options` go to the RabbitMQ transport (`window`, `resend`,
    `reconnect_timeout`, `name`)."""
    return Opening(url, options)
