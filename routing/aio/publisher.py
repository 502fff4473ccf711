"""`Publisher` for asyncio: validated envelopes onto an asyncio transport.

    async with open_transport(url) as transport:
        publisher = Publisher(transport, source="urn:shop:orders")
        publication = await publisher.emit("shop.events", "order.created", "order.created", {"id": 42})
        if await publication is not Outcome.CONFIRMED:   # the broker's answer for this one
            ...
        await publisher.flush()                           # or for everything at once

The same checks and tally as `routing.Publisher` (the code is `PublisherBase`'s): an
invalid event is refused before it is sent, with the failing field named.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any

from routing import _telemetry
from routing.envelope import DEFAULT_SOURCE, MAX_BYTES, Envelope
from routing.properties import Properties
from routing.publisher import PublisherBase
from routing.schemas import SchemaRegistry
from routing.transport.aio.base import AsyncPublication, AsyncTransport
from routing.transport.base import Publication

__all__ = ["Publisher"]


class Publisher(PublisherBase):
    """Publishes envelopes through an asyncio `transport`; see `routing.Publisher` for the
    parameters. `publish`, `emit` and `publish_json` return once the message is sent (they
    wait only when the confirm window is full); await the publication for its outcome."""

    def __init__(
        self,
        transport: AsyncTransport,
        *,
        registry: SchemaRegistry | None = None,
        source: str = DEFAULT_SOURCE,
        persistent: bool = True,
        ce_headers: bool = False,
        mandatory: bool = False,
        max_bytes: int = MAX_BYTES,
        headers: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(
            registry=registry,
            source=source,
            persistent=persistent,
            ce_headers=ce_headers,
            mandatory=mandatory,
            max_bytes=max_bytes,
            headers=headers,
        )
        self.transport = transport

    async def publish(
        self, exchange: str, routing_key: str, event: Envelope, *, mandatory: bool | None = None
    ) -> AsyncPublication:
        """Validate, encode and send `event`."""
        return await self._publish(exchange, routing_key, *self._encode(event.to_dict()), mandatory)

    async def emit(
        self,
        exchange: str,
        routing_key: str,
        event_type: str,
        data: object = None,
        *,
        subject: str | None = None,
        extensions: Mapping[str, str | int | bool] | None = None,
        mandatory: bool | None = None,
    ) -> AsyncPublication:
        """Build a new event (fresh id, current time, this publisher's source) and publish it."""
        body, properties = self._new(event_type, data, subject, extensions)
        return await self._publish(exchange, routing_key, body, properties, mandatory)

    async def publish_json(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        event_type: str | None = None,
        message_id: str | None = None,
        mandatory: bool | None = None,
    ) -> AsyncPublication:
        """Send a plain JSON object as the whole body (see `routing.Publisher.publish_json`)."""
        properties = self._json(body, event_type, message_id)
        return await self._publish(exchange, routing_key, body, properties, mandatory)

    async def _publish(
        self, exchange: str, routing_key: str, body: bytes, properties: Properties, mandatory: bool | None
    ) -> AsyncPublication:
        publication = await _telemetry.apublish(self.transport.publish, self.transport)(
            exchange, routing_key, body, properties, mandatory=self._mandatory(mandatory)
        )
        self.published += 1
        return publication

    def batch(self) -> AbstractContextManager[None]:
        """`routing.Publisher.batch`, accepted so the same code runs here: a no-op, as the
        asyncio transports already write many messages at once."""
        return self.transport.batch()

    async def flush(self, timeout: float | None = None) -> list[Publication]:
        """Wait for the broker's answer to everything published; returns the publications
        that were not confirmed (returned, nacked, or lost with the connection)."""
        return self._flushed(await self.transport.flush(timeout))
