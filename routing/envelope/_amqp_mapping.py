"""Envelopes onto AMQP properties, and a plain JSON body's attributes read off them.

Publishing: `to_properties` (`document_properties` for an envelope's JSON object) fills
`content_type`, `message_id`, `type`, `app_id`, `timestamp` and, on request, `ce-` headers.
Consuming a body that is not an envelope: `wrap_plain` takes its attributes from the queue's
event type, those properties and `ce-` headers (the CloudEvents AMQP binding's binary mode).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from routing._frozen import EMPTY, FrozenDict
from routing.envelope._value import (
    DEFAULT_SOURCE,
    EXTENSION_NAME,
    JSON_TYPE,
    SPECVERSION,
    Envelope,
    parse_time,
)
from routing.errors import ValidationError
from routing.properties import Properties

CONTENT_TYPE = "application/cloudevents+json"
HEADER_PREFIX = "ce-"
_SHORTSTR = 255  # AMQP shortstr: message_id, type and app_id longer than this cannot be sent


def to_properties(envelope: Envelope, *, persistent: bool = True, ce_headers: bool = False) -> Properties:
    """AMQP properties for publishing `envelope`. `ce_headers` also copies every attribute
    into `ce-` headers, so a headers exchange can route on `ce-type`."""
    if ce_headers:
        attributes = envelope.to_dict()
    else:  # only what the properties need: no copy of the data
        attributes = {
            "id": envelope.id,
            "source": envelope.source,
            "type": envelope.type,
            "time": envelope.time,
        }
    return document_properties(attributes, persistent=persistent, ce_headers=ce_headers)


def document_properties(
    document: Mapping[str, Any], *, persistent: bool = True, ce_headers: bool = False
) -> Properties:
    """`to_properties` for an envelope's JSON object."""
    time = document.get("time")
    when = parse_time(time) if time is not None else None
    timestamp = amqp_timestamp(when) if when is not None else None
    headers: Mapping[str, Any] = EMPTY
    if ce_headers:
        # datacontenttype is the body's content type, not ours
        skip = ("data", "datacontenttype")
        headers = FrozenDict({HEADER_PREFIX + k: v for k, v in document.items() if k not in skip})
    return Properties(
        content_type=CONTENT_TYPE,
        delivery_mode=2 if persistent else 1,
        message_id=_shortstr(document["id"]),
        type=_shortstr(document["type"]),
        app_id=_shortstr(document["source"]),
        timestamp=timestamp if timestamp is not None and timestamp >= 0 else None,  # AMQP's is unsigned
        headers=headers,
    )


def amqp_timestamp(when: datetime) -> int:
    """Whole seconds since the epoch, rounded down: 23:59:59.5 on 1969-12-31 is -1, not 0."""
    return math.floor(when.timestamp())


def _shortstr(value: str) -> str | None:
    # Longer values would make the publish fail; the body still has them.
    if value.isascii():  # a byte a character, and no lone surrogate: no need to encode it
        return value if len(value) <= _SHORTSTR else None
    return value if len(value.encode()) <= _SHORTSTR else None


def body_id(body: bytes) -> str:
    """The id of a message that came without one: the same body always gets the same id."""
    return "sha256:" + hashlib.sha256(body).hexdigest()[:32]


def wrap_plain(
    data: dict[str, Any], body: bytes, properties: Properties, event_type: str | None
) -> dict[str, Any]:
    """A plain body as an envelope: attributes from the queue, the properties and `ce-` headers."""
    headers = properties.headers or {}
    ce = {
        k[len(HEADER_PREFIX) :]: _header_value(v)
        for k, v in headers.items()
        if isinstance(k, str)
        and k.startswith(HEADER_PREFIX)
        and EXTENSION_NAME.match(k[len(HEADER_PREFIX) :])
    }
    ce.pop("data", None)
    named = ce.pop("datacontenttype", None)  # binary mode: the AMQP content type is the datacontenttype
    chosen = event_type or properties.type or ce.get("type")
    if not chosen:
        raise ValidationError(
            [
                "type: a plain JSON body (no specversion) has no event type; give the queue one (event_type),"
                " or publish with the AMQP type property or a ce-type header"
            ],
            path="type",
        )
    document: dict[str, Any] = {**ce, "specversion": SPECVERSION, "type": chosen}
    # A stable id, so redeliveries and duplicates can be spotted.
    document["id"] = properties.message_id or ce.get("id") or body_id(body)
    document["source"] = properties.app_id or ce.get("source") or DEFAULT_SOURCE
    if "time" not in ce and properties.timestamp is not None:
        try:
            stamp = datetime.fromtimestamp(properties.timestamp, UTC)
        except (OverflowError, OSError, ValueError, TypeError):
            pass  # a nonsense timestamp is no reason to lose the message
        else:
            document["time"] = stamp.isoformat().replace("+00:00", "Z")
    # Binary mode: the content type, parameters and all (`application/json; charset=utf-8`).
    document["datacontenttype"] = properties.content_type or named or JSON_TYPE
    document["data"] = data
    return document


def _header_value(value: Any) -> Any:
    """A `ce-` header as an attribute value. The CloudEvents AMQP binding asks receivers to take
    `time` in AMQP's native timestamp type as well as a string; pika decodes one as a naive
    UTC datetime. Binary (bytes) values are taken as UTF-8 text when they are."""
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value
    return value
