"""Envelopes as UTF-8 JSON bodies: `encode` writes one, `decode` reads one (or a plain JSON
body, wrapped with the attributes its AMQP properties give). JSON only: no pickle, eval or YAML."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from routing._json import parse_json, parse_json_exact
from routing.envelope._amqp_mapping import CONTENT_TYPE, wrap_plain
from routing.envelope._value import DEFAULT_SOURCE, JSON_TYPE, NO_BASE64, Envelope
from routing.errors import DecodeError, EnvelopeError, ValidationError
from routing.properties import Properties
from routing.schemas import SchemaRegistry

MAX_BYTES = 1 << 20  # 1 MiB; checked before a byte is decoded
# Built once: `json.dumps` with any option builds a new encoder per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
# Data nested at most this deep (as many brackets at most) is frozen when first read; deeper
# data is frozen at once, so "nested too deeply" stays a decoding error, not the handler's.
_LAZY_BRACKETS = 100


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
        body = _ENCODER.encode(document).encode()
    except (TypeError, ValueError) as exc:  # NaN, a set, a lone surrogate...
        raise EnvelopeError(f"data: cannot be written as JSON: {exc}") from exc
    if max_bytes is not None and len(body) > max_bytes:
        raise EnvelopeError(f"envelope is {len(body)} bytes, over the {max_bytes}-byte limit; send less data")
    return body


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
    text = _text(body, max_bytes)
    document, exact = _parse(text)
    structured = "specversion" in document or (properties.content_type or "").startswith(CONTENT_TYPE)
    if structured:  # CloudEvents JSON: a null attribute is an absent one
        document = {k: v for k, v in document.items() if v is not None or k == "data"}
        if "data_base64" in document:  # before the schema, which would call it a bad extension name
            raise ValidationError([NO_BASE64], path="data_base64")
    else:
        document = wrap_plain(document, body, properties, event_type)
    # As parsed: plain JSON, unless an integer is past what a float holds exactly (the
    # registry's fast path then checks it), or attributes came from AMQP headers.
    if registry is not None:
        registry.validate(document, parsed=structured and exact)
    try:
        if registry is not None and registry.checks_attributes:
            # Validated once: not checked again, and `data` frozen when first read.
            shallow = text.count("{") + text.count("[") <= _LAZY_BRACKETS
            return Envelope._checked(document, lazy=shallow)
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


def _text(body: bytes, max_bytes: int) -> str:
    if not isinstance(body, bytes | bytearray | memoryview):
        raise DecodeError(f"body must be bytes, got {type(body).__name__}")
    if len(body) > max_bytes:  # before decoding anything: a huge body costs nothing
        raise DecodeError(f"body is {len(body)} bytes, over the {max_bytes}-byte limit")
    try:
        return bytes(body).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"not UTF-8: byte 0x{body[exc.start]:02x} at offset {exc.start}") from None


def _parse(text: str) -> tuple[dict[str, Any], bool]:
    """The JSON object, and whether its integers are all exact floats (`parse_json_exact`)."""
    if not text.strip():
        raise DecodeError("empty body; expected a JSON object")
    try:
        document, exact = parse_json_exact(text)
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
    return document, exact


def _kind(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def build_envelope(
    event_type: str,
    data: str | bytes | None,
    *,
    source: str = DEFAULT_SOURCE,
    subject: str | None = None,
    extensions: Mapping[str, str | int | bool] | None = None,
    registry: SchemaRegistry | None,
) -> Envelope:
    """`Envelope.new` with JSON text for `data` (as given on a command line or stdin), then
    validated; None or blank text means no data."""
    value = None
    if data is not None and data.strip():
        try:
            value = parse_json(data)
        except (ValueError, RecursionError) as exc:
            raise DecodeError(f"data: not JSON: {exc}") from None
    envelope = Envelope.new(event_type, value, source=source, subject=subject, extensions=extensions)
    if registry is not None:
        registry.validate(envelope.to_dict())
    return envelope
