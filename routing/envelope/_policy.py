"""The consumer's policy: `decode_or_reject` gives an envelope, or the reason to dead-letter
the message (a `Rejection`), and never raises."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from routing._frozen import FrozenDict
from routing._text import clip
from routing.envelope._codec import MAX_BYTES, decode
from routing.envelope._value import Envelope
from routing.errors import EnvelopeError, ValidationError
from routing.properties import Properties
from routing.schemas import SchemaRegistry

ERROR_HEADER = "x-routing-error"
ERROR_PATH_HEADER = "x-routing-error-path"
_MAX_REASON = 1000  # keep dead-letter headers small


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
        return Rejection(clip("; ".join(exc.problems), _MAX_REASON), exc.path)
    except EnvelopeError as exc:
        return Rejection(clip(str(exc), _MAX_REASON))
    except RecursionError:
        return Rejection("JSON nested too deeply")
    except Exception as exc:  # a bug here must dead-letter one message, not stop the consumer
        return Rejection(clip(f"cannot decode: {type(exc).__name__}: {exc}", _MAX_REASON))
