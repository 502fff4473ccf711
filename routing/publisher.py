"""`Publisher`: validated envelopes onto a transport, the one way producers should send.

    with open_transport(url) as transport:
        publisher = Publisher(transport, source="urn:shop:orders")
        publisher.emit("shop.events", "order.created", "order.created", {"id": 42})
        publisher.flush()     # every publication confirmed, or the failures
        publisher.tally       # Tally(published=1, confirmed=1, ...)

An invalid event is refused before it is sent, with the failing field named
(`ValidationError`); what the broker returns, nacks or never confirms comes back from
`flush()` (and from each `Publication`), never silently, and is counted in `tally`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import Any

from routing import _telemetry
from routing._frozen import FrozenDict
from routing._json import parse_json
from routing.envelope import (
    DEFAULT_SOURCE,
    JSON_TYPE,
    MAX_BYTES,
    Envelope,
    decode,
    document_properties,
    encode_document,
    new_document,
)
from routing.errors import BrokerError, DecodeError
from routing.properties import Properties
from routing.schemas import SchemaRegistry
from routing.transport.base import Outcome, Publication, Transport

__all__ = ["Publisher", "PublisherBase", "Tally", "check_json_body"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Tally:
    """How the broker answered `published` messages: each was confirmed, returned
    (mandatory and unroutable), nacked, unconfirmed (the connection dropped first), or is
    still unsettled (no answer before `flush` gave up waiting)."""

    published: int = 0
    returned: int = 0
    nacked: int = 0
    unconfirmed: int = 0
    unsettled: int = 0
    first_error: BrokerError | None = field(default=None, compare=False)  # behind a failure

    @classmethod
    def of(cls, published: int, failures: Iterable[Publication]) -> Tally:
        """The tally of `published` messages of which `failures` (what `flush` returned)
        were not confirmed."""
        counts = dict.fromkeys(Outcome, 0)
        unsettled = 0
        first_error = None
        for publication in failures:
            if publication.outcome is None:
                unsettled += 1
            else:
                counts[publication.outcome] += 1
            first_error = first_error or publication.error
        return cls(
            published=published,
            returned=counts[Outcome.RETURNED],
            nacked=counts[Outcome.NACKED],
            unconfirmed=counts[Outcome.UNCONFIRMED],
            unsettled=unsettled,
            first_error=first_error,
        )

    @property
    def failed(self) -> int:
        """Not confirmed, for whatever reason."""
        return self.returned + self.nacked + self.unconfirmed + self.unsettled

    @property
    def confirmed(self) -> int:
        return self.published - self.failed

    @property
    def ok(self) -> bool:
        """Every message published was confirmed."""
        return not self.failed


def check_json_body(
    body: bytes,
    *,
    event_type: str | None = None,
    headers: Mapping[str, Any] | None = None,
    registry: SchemaRegistry | None = None,
) -> None:
    """Check a plain body as a consumer will read it, before anything is sent: a JSON object,
    valid for `event_type`'s schema if given (read with the properties `Publisher.publish_json`
    sends it with). Raises `DecodeError` or `ValidationError`."""
    properties = _json_properties(event_type, FrozenDict(headers or {}), True, str(uuid.uuid4()))
    _check_json(body, properties, event_type, registry if registry is not None else SchemaRegistry.bundled())


def _json_properties(
    event_type: str | None, headers: FrozenDict, persistent: bool, message_id: str
) -> Properties:
    return Properties(
        content_type=JSON_TYPE,
        delivery_mode=2 if persistent else 1,
        message_id=message_id,
        type=event_type,
        headers=headers,
    )


def _check_json(
    body: bytes, properties: Properties, event_type: str | None, registry: SchemaRegistry
) -> None:
    if event_type is not None:
        decode(body, properties, registry=registry, event_type=event_type)
        return
    try:
        value = parse_json(body)
    except (ValueError, RecursionError) as exc:
        raise DecodeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise DecodeError(f"expected a JSON object, got {type(value).__name__}")


class PublisherBase:
    """What `Publisher` and `routing.aio.Publisher` share: the settings, the checks and
    encoding before anything is sent, and the tally of what the broker answered. It sends
    nothing itself."""

    def __init__(
        self,
        *,
        registry: SchemaRegistry | None = None,
        source: str = DEFAULT_SOURCE,
        persistent: bool = True,
        ce_headers: bool = False,
        mandatory: bool = False,
        max_bytes: int = MAX_BYTES,
        headers: Mapping[str, Any] | None = None,
    ) -> None:
        self.registry = registry if registry is not None else SchemaRegistry.bundled()
        self.source = source
        self.persistent = persistent
        self.ce_headers = ce_headers
        self.mandatory = mandatory
        self.max_bytes = max_bytes
        self.headers = FrozenDict(headers or {})
        self.published = 0
        self._failed: dict[int, Publication] = {}  # settled and not confirmed, by identity
        self._unsettled: list[Publication] = []  # unanswered at the last flush

    def _new(
        self,
        event_type: str,
        data: object,
        subject: str | None,
        extensions: Mapping[str, str | int | bool] | None,
    ) -> tuple[bytes, Properties]:
        """A new event's body and properties (see `emit`)."""
        document = new_document(event_type, data, source=self.source, subject=subject, extensions=extensions)
        return self._encode(document)

    def _encode(self, document: dict[str, Any]) -> tuple[bytes, Properties]:
        """Validate and encode an envelope document; `ValidationError` names the failing field."""
        _telemetry.created(document)
        body = encode_document(document, registry=self.registry, max_bytes=self.max_bytes)
        properties = document_properties(document, persistent=self.persistent, ce_headers=self.ce_headers)
        if self.headers:
            properties = replace(properties, headers=FrozenDict({**properties.headers, **self.headers}))
        return body, properties

    def _json(self, body: bytes, event_type: str | None, message_id: str | None) -> Properties:
        """A plain JSON body's properties, once it is checked as a consumer will read it."""
        properties = _json_properties(
            event_type, self.headers, self.persistent, message_id or str(uuid.uuid4())
        )
        _check_json(body, properties, event_type, self.registry)
        return properties

    def _mandatory(self, mandatory: bool | None) -> bool:
        return self.mandatory if mandatory is None else mandatory

    def _flushed(self, failures: list[Publication]) -> list[Publication]:
        """Count what a flush reported. One left unsettled by a flush that gave up comes back
        from a later one if it fails (counted then, once), or not at all when it was
        confirmed after all."""
        self._failed.update((id(p), p) for p in failures if p.outcome is not None)
        self._unsettled = [p for p in failures if p.outcome is None]
        return failures

    @property
    def tally(self) -> Tally:
        """What the broker answered for everything this publisher sent, as the flushes so
        far tell: flush first (what was sent after the last flush is not known to fail yet)."""
        return Tally.of(self.published, [*self._failed.values(), *self._unsettled])


class Publisher(PublisherBase):
    """Publishes envelopes through `transport`, each validated against `registry` (the
    bundled schemas by default) and sent persistent with publisher confirms. `headers` are
    added to every message's (after the `ce-` ones, which they may override).

    `published` counts what it sent; `tally` what the broker answered, as the flushes so far
    reported it (a transport's flush reports every publication on it: give each publisher
    its own transport to tally them apart)."""

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

    def publish(
        self, exchange: str, routing_key: str, event: Envelope, *, mandatory: bool | None = None
    ) -> Publication:
        """Validate, encode and send `event`; returns at once (see `flush`)."""
        return self._publish(exchange, routing_key, *self._encode(event.to_dict()), mandatory)

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
        body, properties = self._new(event_type, data, subject, extensions)
        return self._publish(exchange, routing_key, body, properties, mandatory)

    def publish_json(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        event_type: str | None = None,
        message_id: str | None = None,
        mandatory: bool | None = None,
    ) -> Publication:
        """Send a JSON object as the whole body, no envelope, as producers that know nothing of
        envelopes do: `application/json`, `message_id` (a fresh one by default), the AMQP
        `type` property `event_type`, this publisher's headers. Checked first as a consumer
        will read it (`check_json_body`): nothing is sent when it is refused."""
        properties = self._json(body, event_type, message_id)
        return self._publish(exchange, routing_key, body, properties, mandatory)

    def _publish(
        self, exchange: str, routing_key: str, body: bytes, properties: Properties, mandatory: bool | None
    ) -> Publication:
        publication = _telemetry.publish(self.transport.publish, self.transport)(
            exchange, routing_key, body, properties, mandatory=self._mandatory(mandatory)
        )
        self.published += 1
        return publication

    def batch(self) -> AbstractContextManager[None]:
        """`with publisher.batch(): ...`: the transport's `batch`. Many messages to a socket
        write instead of one each; all of them on the wire when the block ends."""
        return self.transport.batch()

    def flush(self, timeout: float | None = None) -> list[Publication]:
        """Wait for the broker's answer to everything published; returns the publications
        that were not confirmed (returned, nacked, or lost with the connection)."""
        return self._flushed(self.transport.flush(timeout))
