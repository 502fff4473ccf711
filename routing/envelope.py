"""Envelopes: CloudEvents 1.0 events in structured JSON mode, as frozen values.

`encode` writes one as UTF-8 JSON; `decode` reads it back, and also reads a plain JSON body
from a producer that knows nothing of envelopes (the event type then comes from the queue,
the AMQP `type` property or a `ce-type` header). `to_properties` maps an envelope onto AMQP
properties. `decode_or_reject` is the consumer's policy: an envelope, or the reason to
dead-letter the message, and never an exception. JSON only: no pickle, eval or YAML.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from rfc3339_validator import validate_rfc3339

from routing._frozen import EMPTY, FrozenDict, freeze, thaw
from routing.errors import DecodeError, EnvelopeError, ValidationError
from routing.properties import Properties
from routing.schemas import SchemaRegistry

SPECVERSION = "1.0"
CONTENT_TYPE = "application/cloudevents+json"
JSON_TYPE = "application/json"
MAX_BYTES = 1 << 20  # 1 MiB; checked before a byte is decoded
DEFAULT_SOURCE = "urn:routing:unknown"
HEADER_PREFIX = "ce-"
ERROR_HEADER = "x-routing-error"
ERROR_PATH_HEADER = "x-routing-error-path"

OPTIONAL = ("time", "subject", "datacontenttype", "dataschema")
ATTRIBUTES = ("specversion", "id", "source", "type", *OPTIONAL)
RESERVED = frozenset((*ATTRIBUTES, "data", "data_base64"))
_EXTENSION_NAME = re.compile(r"^[a-z0-9]+$")
_SHORTSTR = 255  # AMQP shortstr: message_id, type and app_id longer than this cannot be sent
_INT32 = range(-(2**31), 2**31)
_MAX_REASON = 1000  # keep dead-letter headers small


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """One event. `data` and `extensions` are deeply frozen (dicts become read-only
    mappings, lists tuples); `to_dict()` gives plain JSON values back. `time` is kept as
    the RFC 3339 text it was written with, so decoding and re-encoding changes nothing."""

    id: str
    source: str
    type: str
    specversion: str = SPECVERSION
    time: str | None = None
    subject: str | None = None
    datacontenttype: str | None = None
    dataschema: str | None = None
    data: Any = None
    extensions: Mapping[str, str | int | bool] = field(default=EMPTY)

    def __post_init__(self) -> None:
        problems = _attribute_problems(self)
        if problems:
            raise ValidationError(problems, path=problems[0].split(":", 1)[0])
        object.__setattr__(self, "data", freeze(self.data))
        object.__setattr__(self, "extensions", FrozenDict(self.extensions))

    @classmethod
    def new(
        cls,
        type: str,
        data: Any = None,
        *,
        source: str = DEFAULT_SOURCE,
        subject: str | None = None,
        dataschema: str | None = None,
        extensions: Mapping[str, str | int | bool] | None = None,
    ) -> Envelope:
        """A fresh event: a random UUID for `id`, the current UTC time, JSON data."""
        return cls(
            id=_new_id(),
            source=source,
            type=type,
            time=_now(),
            subject=subject,
            datacontenttype=JSON_TYPE if data is not None else None,
            dataschema=dataschema,
            data=data,
            extensions=extensions or EMPTY,
        )

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> Envelope:
        """The envelope a JSON object describes; nulls count as absent (CloudEvents JSON).
        Checks attribute types only: use a `SchemaRegistry` for the rest."""
        values = {k: v for k, v in document.items() if v is not None or k == "data"}
        extensions = {k: v for k, v in values.items() if k not in RESERVED}
        known = {k: values[k] for k in ATTRIBUTES if k in values}
        missing = [
            f"{name}: required" for name in ("specversion", "id", "source", "type") if name not in known
        ]
        if missing:
            raise ValidationError(missing, path=missing[0].split(":", 1)[0])
        if "data_base64" in values:
            raise ValidationError([_NO_BASE64], path="data_base64")
        return cls(**known, data=values.get("data"), extensions=extensions)

    def to_dict(self) -> dict[str, Any]:
        """The structured-mode JSON object, with plain dicts and lists."""
        out: dict[str, Any] = {
            "specversion": self.specversion,
            "id": self.id,
            "source": self.source,
            "type": self.type,
        }
        for name in OPTIONAL:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        out.update(self.extensions)
        if self.data is not None:
            out["data"] = thaw(self.data)
        return out

    @property
    def parsed_time(self) -> datetime | None:
        """`time` as an aware datetime (microsecond precision), or None."""
        return _parse_time(self.time) if self.time is not None else None


def _new_id() -> str:
    return str(uuid.uuid4())


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def new_document(
    event_type: str,
    data: Any = None,
    *,
    source: str = DEFAULT_SOURCE,
    subject: str | None = None,
    dataschema: str | None = None,
    extensions: Mapping[str, str | int | bool] | None = None,
) -> dict[str, Any]:
    """The JSON object of a fresh event, as `Envelope.new(...).to_dict()` gives it, built
    directly: no frozen copy of `data` made and thawed again. The publisher's fast path; it
    is checked only by a registry (whose envelope schema holds the attribute rules)."""
    document: dict[str, Any] = {
        "specversion": SPECVERSION,
        "id": _new_id(),
        "source": source,
        "type": event_type,
        "time": _now(),
    }
    if subject is not None:
        document["subject"] = subject
    if data is not None:
        document["datacontenttype"] = JSON_TYPE
    if dataschema is not None:
        document["dataschema"] = dataschema
    if extensions:
        taken = sorted(RESERVED.intersection(extensions))
        if taken:
            problems = [
                f"{name}: not an allowed extension name; it is a CloudEvents attribute" for name in taken
            ]
            raise ValidationError(problems, path=taken[0])
        document.update(extensions)
    if data is not None:
        document["data"] = data
    return document


_NO_BASE64 = "data_base64: binary data (data_base64) is not supported; send JSON in data"


def _attribute_problems(envelope: Envelope) -> list[str]:
    """What CloudEvents forbids outright, checked without a schema."""
    problems = []
    if envelope.specversion != SPECVERSION:
        problems.append(f"specversion: must be {SPECVERSION!r}, got {envelope.specversion!r}")
    for name in ("id", "source", "type"):
        value = getattr(envelope, name)
        if not isinstance(value, str) or not value:
            problems.append(f"{name}: must be a non-empty string, got {value!r}")
    for name in OPTIONAL:
        value = getattr(envelope, name)
        if value is not None and (not isinstance(value, str) or not value):
            problems.append(f"{name}: must be a non-empty string when present, got {value!r}")
    # RFC 3339 section 5.6 lets `T` and `Z` be lowercase; rfc3339-validator wants them upper.
    if isinstance(envelope.time, str) and envelope.time and not validate_rfc3339(envelope.time.upper()):
        problems.append(f"time: not an RFC 3339 date-time: {envelope.time!r}")
    if not isinstance(envelope.extensions, Mapping):
        return [*problems, f"extensions: must be a mapping, got {type(envelope.extensions).__name__}"]
    for name, value in envelope.extensions.items():
        if not isinstance(name, str) or not _EXTENSION_NAME.match(name) or name in RESERVED:
            problems.append(f"{name}: not an allowed extension name; use lowercase letters and digits")
        elif not isinstance(value, str | bool | int) or (type(value) is int and value not in _INT32):
            problems.append(f"{name}: an extension is a string, boolean or 32-bit integer, got {value!r}")
    return problems


def _parse_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.upper())
    except ValueError:  # a leap second, say: valid RFC 3339, not a datetime
        return None


def encode(
    envelope: Envelope, *, registry: SchemaRegistry | None = None, max_bytes: int | None = MAX_BYTES
) -> bytes:
    """Compact UTF-8 JSON. With a registry, an invalid envelope is refused before it is written;
    a body over `max_bytes` is refused too, since consumers would dead-letter it."""
    return encode_document(envelope.to_dict(), registry=registry, max_bytes=max_bytes)


def encode_document(
    document: Mapping[str, Any], *, registry: SchemaRegistry | None, max_bytes: int | None = MAX_BYTES
) -> bytes:
    """`encode` for an envelope's JSON object (`Envelope.to_dict()`, `new_document()`)."""
    if registry is not None:
        registry.validate(document)
    try:
        body = json.dumps(document, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
    except (TypeError, ValueError) as exc:  # NaN, a set, a lone surrogate...
        raise EnvelopeError(f"data: cannot be written as JSON: {exc}") from exc
    if max_bytes is not None and len(body) > max_bytes:
        raise EnvelopeError(f"envelope is {len(body)} bytes, over the {max_bytes}-byte limit; send less data")
    return body


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
    when = _parse_time(time) if time is not None else None
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
    return value if len(value.encode()) <= _SHORTSTR else None


def decode(
    body: bytes,
    properties: Properties | None = None,
    *,
    registry: SchemaRegistry | None,
    event_type: str | None = None,
    max_bytes: int = MAX_BYTES,
) -> Envelope:
    """The envelope in `body`. A JSON object with `specversion` (or sent as
    `application/cloudevents+json`) is an envelope; any other JSON object is `data`, wrapped
    using `properties` and `event_type` (the queue's type for plain bodies). With a
    registry the result is validated; `registry=None` checks attribute types only.
    Raises `DecodeError` or `ValidationError`."""
    properties = properties or Properties()
    _check_content_type(properties.content_type)
    document = _parse(body, max_bytes)
    structured = "specversion" in document or (properties.content_type or "").startswith(CONTENT_TYPE)
    if structured:  # CloudEvents JSON: a null attribute is an absent one
        document = {k: v for k, v in document.items() if v is not None or k == "data"}
        if "data_base64" in document:  # before the schema, which would call it a bad extension name
            raise ValidationError([_NO_BASE64], path="data_base64")
    else:
        document = _wrap(document, body, properties, event_type)
    if registry is not None:
        registry.validate(document)
    try:
        return Envelope.from_dict(document)
    except RecursionError:
        raise DecodeError("JSON nested too deeply") from None


def _check_content_type(content_type: str | None) -> None:
    """No content type is taken as JSON; a declared non-JSON one is refused unread."""
    if not content_type:
        return
    media = content_type.split(";", 1)[0].strip().lower()
    if media in (JSON_TYPE, CONTENT_TYPE) or media.endswith("+json"):
        return
    raise DecodeError(f"content type {content_type!r} is not JSON; send application/json or {CONTENT_TYPE}")


def _parse(body: bytes, max_bytes: int) -> dict[str, Any]:
    if not isinstance(body, bytes | bytearray | memoryview):
        raise DecodeError(f"body must be bytes, got {type(body).__name__}")
    if len(body) > max_bytes:  # before decoding anything: a huge body costs nothing
        raise DecodeError(f"body is {len(body)} bytes, over the {max_bytes}-byte limit")
    try:
        text = bytes(body).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"not UTF-8: byte 0x{body[exc.start]:02x} at offset {exc.start}") from None
    if not text.strip():
        raise DecodeError("empty body; expected a JSON object")
    try:
        document = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()):
            raise DecodeError(f"not JSON: truncated at character {exc.pos} ({exc.msg})") from None
        raise DecodeError(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except ValueError as exc:  # NaN and Infinity
        raise DecodeError(f"not JSON: {exc}") from None
    except RecursionError:
        raise DecodeError("JSON nested too deeply") from None
    if not isinstance(document, dict):
        raise DecodeError(f"expected a JSON object, got {_kind(document)}")
    return document


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)  # json.loads would build one per call


def _kind(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def body_id(body: bytes) -> str:
    """The id of a message that came without one: the same body always gets the same id."""
    return "sha256:" + hashlib.sha256(body).hexdigest()[:32]


def _wrap(
    data: dict[str, Any], body: bytes, properties: Properties, event_type: str | None
) -> dict[str, Any]:
    """A plain body as an envelope: attributes from the queue, the properties and `ce-` headers."""
    headers = properties.headers or {}
    ce = {
        k[len(HEADER_PREFIX) :]: _header_value(v)
        for k, v in headers.items()
        if isinstance(k, str)
        and k.startswith(HEADER_PREFIX)
        and _EXTENSION_NAME.match(k[len(HEADER_PREFIX) :])
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


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message cannot be handled: nack it without requeue so the dead-letter exchange
    gets it. RabbitMQ cannot add headers to a nacked message: to keep the reason, publish
    a copy with `annotate(properties)` to the dead-letter exchange and ack the original."""

    reason: str
    path: str = ""

    @property
    def headers(self) -> Mapping[str, str]:
        return FrozenDict({ERROR_HEADER: self.reason, ERROR_PATH_HEADER: self.path})

    def annotate(self, properties: Properties | None) -> Properties:
        """`properties` with the error headers added (existing headers kept)."""
        properties = properties or Properties()
        return replace(properties, headers=FrozenDict({**(properties.headers or {}), **self.headers}))


def decode_or_reject(
    body: bytes,
    properties: Properties | None = None,
    *,
    registry: SchemaRegistry | None,
    event_type: str | None = None,
    max_bytes: int = MAX_BYTES,
) -> Envelope | Rejection:
    """`decode`, with every failure turned into a `Rejection`: a bad message must never
    reach the handler nor crash the consumer."""
    try:
        return decode(body, properties, registry=registry, event_type=event_type, max_bytes=max_bytes)
    except ValidationError as exc:
        return Rejection(_clip("; ".join(exc.problems)), exc.path)
    except EnvelopeError as exc:
        return Rejection(_clip(str(exc)))
    except RecursionError:
        return Rejection("JSON nested too deeply")
    except Exception as exc:  # a bug here must dead-letter one message, not stop the consumer
        return Rejection(_clip(f"cannot decode: {type(exc).__name__}: {exc}"))


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 3] + "..."


def build_envelope(
    event_type: str,
    data: str | bytes | None,
    *,
    source: str = DEFAULT_SOURCE,
    subject: str | None = None,
    extensions: Mapping[str, str | int | bool] | None = None,
    registry: SchemaRegistry | None,
) -> Envelope:
    """A new, validated envelope from JSON text for `data` (as given on a command line or
    stdin); None or blank text means no data."""
    value = None
    if data is not None and data.strip():
        try:
            value = json.loads(data, parse_constant=_refuse_constant)
        except (ValueError, RecursionError) as exc:
            raise DecodeError(f"data: not JSON: {exc}") from None
    envelope = Envelope.new(event_type, value, source=source, subject=subject, extensions=extensions)
    if registry is not None:
        registry.validate(envelope.to_dict())
    return envelope
