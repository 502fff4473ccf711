"""`Publisher`: validated envelopes onto a transport, the one way producers should send.

    with open_transport(url) as transport:
        publisher = Publisher(transport, source="urn:shop:orders")
        publisher.emit("shop.events", "order.created", "order.created", {"id": 42})
        publisher.flush()     # every publication confirmed, or the failures

An invalid event is refused before it is sent, with the failing field named
(`ValidationError`); what the broker returns, nacks or never confirms comes back from
`flush()` (and from each `Publication`), never silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from routing._frozen import FrozenDict
from routing.envelope import (
    DEFAULT_SOURCE,
    MAX_BYTES,
    Envelope,
    document_properties,
    encode_document,
    new_document,
)
from routing.schemas import SchemaRegistry
from routing.transport.base import Publication, Transport


class Publisher:
    """Publishes envelopes through `transport`, each validated against `registry` (the
    bundled schemas by default) and sent persistent with publisher confirms. `headers` are
    added to every message's (after the `ce-` ones, which they may override)."""

    def __init__(
        self,
        transport: Transport,
        *,
        registry: SchemaRegistry | None = None,
        source: str = DEFAULT_SOURCE,
        persistent: bool = True,
        ce_headers: bool = False,
        mandatory: bool = False,
        max_bytes: int = MAX_BYTES,
        headers: Mapping[str, Any] | None = None,
    ) -> None:
        self.transport = transport
        self.registry = registry if registry is not None else SchemaRegistry.bundled()
        self.source = source
        self.persistent = persistent
        self.ce_headers = ce_headers
        self.mandatory = mandatory
        self.max_bytes = max_bytes
        self.headers = FrozenDict(headers or {})

    def publish(
        self, exchange: str, routing_key: str, event: Envelope, *, mandatory: bool | None = None
    ) -> Publication:
        """Validate, encode and send `event`; returns at once (see `flush`)."""
        return self._send(exchange, routing_key, event.to_dict(), mandatory)

    def emit(
        self,
        exchange: str,
        routing_key: str,
        event_type: str,
        data: object = None,
        *,
        subject: str | None = None,
        extensions: Mapping[str, str | int | bool] | None = None,
        mandatory: bool | None = None,
    ) -> Publication:
        """Build a new event (fresh id, current time, this publisher's source) and publish it.
        The same as `publish(Envelope.new(...))`, without the frozen copy of `data`."""
        document = new_document(event_type, data, source=self.source, subject=subject, extensions=extensions)
        return self._send(exchange, routing_key, document, mandatory)

    def _send(
        self, exchange: str, routing_key: str, document: dict[str, Any], mandatory: bool | None
    ) -> Publication:
        body = encode_document(document, registry=self.registry, max_bytes=self.max_bytes)
        properties = document_properties(document, persistent=self.persistent, ce_headers=self.ce_headers)
        if self.headers:
            properties = replace(properties, headers=FrozenDict({**properties.headers, **self.headers}))
        return self.transport.publish(
            exchange,
            routing_key,
            body,
            properties,
            mandatory=self.mandatory if mandatory is None else mandatory,
        )

    def flush(self, timeout: float | None = None) -> list[Publication]:
        """Wait for the broker's answer to everything published; returns the publications
        that were not confirmed (returned, nacked, or lost with the connection)."""
        return self.transport.flush(timeout)
