"""What a failed message carries: its attempt count and why it failed, in AMQP headers.

Pure functions over `Properties` and `Delivery`, no I/O. A retry or a dead letter is a copy
of the message with these headers added; RabbitMQ cannot add headers to a message it
dead-letters itself, so the worker publishes the copy and then acks the original.
"""

from __future__ import annotations

import traceback
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from routing._frozen import FrozenDict
from routing._text import clip
from routing.envelope import ERROR_HEADER, ERROR_PATH_HEADER, body_id
from routing.errors import PropertyError
from routing.properties import Properties, encode_properties
from routing.transport.base import Delivery

__all__ = [
    "ATTEMPTS",
    "BROKER_DEATH",
    "ERROR_TYPE",
    "FAILED_QUEUE",
    "FIRST_FAILURE",
    "LAST_FAILURE",
    "MAX_ATTEMPTS",
    "MAX_PROPERTIES",
    "ORIGINAL_EXCHANGE",
    "ORIGINAL_ROUTING_KEY",
    "TRACEBACK",
    "DeadLetterRecord",
    "Failure",
    "FailureCopy",
    "Permanent",
    "attempts",
    "failure_copy",
    "for_replay",
    "message_id",
    "record_failure",
    "well_formed_x_death",
]


ATTEMPTS = "x-routing-attempts"  # failed attempts so far
ERROR_TYPE = "x-routing-error-type"
TRACEBACK = "x-routing-traceback"
FIRST_FAILURE = "x-routing-first-failure"
LAST_FAILURE = "x-routing-last-failure"
ORIGINAL_EXCHANGE = "x-routing-original-exchange"
ORIGINAL_ROUTING_KEY = "x-routing-original-routing-key"
FAILED_QUEUE = "x-routing-queue"
# What RabbitMQ adds when it dead-letters a message itself (reject, TTL, length limit);
# the x-last-death-* headers since 3.13 (seen on 4.0.5).
BROKER_DEATH = (
    "x-death",
    "x-first-death-reason",
    "x-first-death-queue",
    "x-first-death-exchange",
    "x-last-death-reason",
    "x-last-death-queue",
    "x-last-death-exchange",
)

_MAX_TEXT = 1000
_SHORT_TEXT = 200
_TRACEBACK_FRAMES = 5
# More failed attempts than this is a forged count: it is taken as this (out of attempts),
# and one more still fits AMQP's signed 64-bit integer.
MAX_ATTEMPTS = 2**31 - 1
# A content header is one frame: its properties may take RabbitMQ's default frame_max
# (131,072 bytes) less the frame's 8 bytes and the header's own 12. A larger copy makes
# RabbitMQ close the connection (501 FRAME_ERROR) and the message comes back again.
MAX_PROPERTIES = 131_072 - 20


class Permanent(Exception):
    """A handler raises this (or a subclass) when trying again cannot help: a corrupt upload,
    a request it refuses. The message goes to the dead-letter queue at once, with the reason;
    any other exception is retried by the handler's policy."""


@dataclass(frozen=True, slots=True)
class Failure:
    """Why one attempt failed. `permanent` failures (an invalid message, no handler, a
    handler that raised `Permanent`) go straight to the dead-letter queue: trying again
    cannot help."""

    error_type: str
    reason: str
    traceback: str = ""
    path: str = ""
    permanent: bool = False

    @classmethod
    def from_exception(cls, exc: BaseException) -> Failure:
        """The handler raised `exc`: its type, message and the innermost frames; permanent
        when `exc` is a `Permanent`."""
        tb = exc.__traceback__
        tb = tb.tb_next or tb if tb is not None else None  # the first frame is the worker's own call
        frames = traceback.extract_tb(tb)[-_TRACEBACK_FRAMES:]
        summary = "; ".join(f"{f.filename}:{f.lineno} in {f.name}" for f in frames)
        return cls(
            type(exc).__name__,
            clip(f"{type(exc).__name__}: {_str(exc)}", _MAX_TEXT),
            clip(summary, _MAX_TEXT),
            permanent=isinstance(exc, Permanent),
        )


def attempts(properties: Properties) -> int:
    """How many attempts at this message have failed so far (0 for a fresh one)."""
    value = (properties.headers or {}).get(ATTEMPTS)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        return 0
    return min(value, MAX_ATTEMPTS)


def record_failure(delivery: Delivery, failure: Failure, *, now: datetime | None = None) -> Properties:
    """The delivery's properties for its retry or dead-letter copy: one more failed
    attempt, this failure as the latest, and where it was first published. Per-message
    TTL is dropped: the retry queue's TTL is the delay. A message without a `message_id`
    gets a fresh one: two identical plain jobs are two dead letters, replayed one by one.
    Texts that UTF-8 cannot carry (a lone surrogate) are written with backslash escapes."""
    headers: dict[str, Any] = dict(delivery.properties.headers or {})
    if "x-death" in headers and not well_formed_x_death(headers["x-death"]):
        # RabbitMQ 3.10 crashes the queue process that dead-letters such a copy (the retry
        # queue, when its TTL sends the copy back), losing every message in that queue.
        del headers["x-death"]
    when = _timestamp(now)
    headers.setdefault(FIRST_FAILURE, when)
    headers.setdefault(ORIGINAL_EXCHANGE, delivery.exchange)
    headers.setdefault(ORIGINAL_ROUTING_KEY, delivery.routing_key)
    headers[FAILED_QUEUE] = delivery.queue
    headers[ATTEMPTS] = attempts(delivery.properties) + 1
    headers[LAST_FAILURE] = when
    headers[ERROR_TYPE] = _utf8(failure.error_type)
    headers[ERROR_HEADER] = _utf8(failure.reason)
    headers[ERROR_PATH_HEADER] = _utf8(failure.path)
    headers[TRACEBACK] = _utf8(failure.traceback)
    return replace(
        delivery.properties,
        headers=FrozenDict(headers),
        expiration=None,
        message_id=delivery.properties.message_id or str(uuid.uuid4()),
    )


_X_DEATH_TEXT = ("reason", "queue", "exchange")


def well_formed_x_death(value: object) -> bool:
    """An `x-death` as RabbitMQ writes it: an array of tables with an integer `count` and
    text `reason`, `queue` and `exchange`. A client can publish anything under that name;
    RabbitMQ 3.10 reads it when it dead-letters the message, and a malformed one (`["junk"]`,
    a count of "abc") makes it drop that message and every other in the queue (seen live on
    3.10.8; 4.0 ignores a client's `x-death`)."""
    if not isinstance(value, list | tuple):
        return False
    for entry in value:
        if not isinstance(entry, Mapping):
            return False
        count = entry.get("count", 0)
        if not isinstance(count, int) or isinstance(count, bool):
            return False
        if any(not isinstance(entry.get(k, ""), str) for k in _X_DEATH_TEXT):
            return False
        keys = entry.get("routing-keys", ())
        if not isinstance(keys, list | tuple) or not all(isinstance(k, str) for k in keys):
            return False
    return True


@dataclass(frozen=True, slots=True)
class FailureCopy:
    """The properties for a failed message's copy, made to fit one frame. `properties` is
    None when no copy can (the message's own headers fill the frame, or cannot be sent
    again): `why` says so. `trimmed` says what was left out to make it fit."""

    properties: Properties | None
    trimmed: str = ""
    why: str = ""


def failure_copy(
    delivery: Delivery, failure: Failure, *, now: datetime | None = None, limit: int = MAX_PROPERTIES
) -> FailureCopy:
    """`record_failure`, then smaller failure records until the copy fits `limit` bytes."""
    full = record_failure(delivery, failure, now=now)
    size = _encoded_size(full)
    if size is not None and size <= limit:
        return FailureCopy(full)
    short = replace(
        failure,
        reason=clip(failure.reason, _SHORT_TEXT),
        traceback="",
        path=clip(failure.path, _SHORT_TEXT),
    )
    smaller = replace(record_failure(delivery, short, now=now), message_id=full.message_id)
    # Last, without what RabbitMQ wrote each time a retry queue sent it back (`x-death`
    # grows by an entry per retry queue): the attempt count says as much.
    headers = {k: v for k, v in smaller.headers.items() if k not in BROKER_DEATH}
    smallest = replace(smaller, headers=FrozenDict(headers))
    for fewer, left_out in ((smaller, "traceback"), (smallest, "traceback and x-death")):
        fewer_size = _encoded_size(fewer)
        if fewer_size is not None and fewer_size <= limit:
            return FailureCopy(
                fewer,
                trimmed=f"its headers are large ({size} bytes with the full failure record, over "
                f"the frame's {limit}): {left_out} left out of the copy, reason clipped",
            )
    if size is None and _encoded_size(smallest) is None:
        return FailureCopy(None, why="its headers cannot be sent again as they are")
    return FailureCopy(
        None, why=f"its own headers leave no room in the frame ({limit} bytes) for the failure record"
    )


def _encoded_size(properties: Properties) -> int | None:
    """Bytes the properties take on the wire; None when they cannot be encoded at all."""
    try:
        return len(encode_properties(properties))
    except PropertyError:
        return None


def message_id(delivery: Delivery) -> str:
    """The id that names a delivery in log lines: its message_id, else its body's hash."""
    return _text(delivery.properties.message_id) or body_id(delivery.body)


def for_replay(properties: Properties) -> Properties:
    """Properties to publish a dead letter again as new: no failure history, attempt 0."""
    headers = {
        k: v
        for k, v in (properties.headers or {}).items()
        if not (isinstance(k, str) and (k.startswith("x-routing-") or k in BROKER_DEATH))
    }
    return replace(properties, headers=FrozenDict(headers))


@dataclass(frozen=True, slots=True)
class DeadLetterRecord:
    """A message in a dead-letter queue, read back: what it was and why it died.

    Messages the worker dead-lettered carry its headers; messages RabbitMQ dead-lettered
    (rejected, expired, over a length limit) are read from `x-death`."""

    id: str
    type: str | None
    reason: str
    error_type: str
    attempts: int | str  # a forged count that is no number is shown as it is
    first_failure: str | None
    last_failure: str | None
    exchange: str  # where it was first published: replay sends it there again
    routing_key: str
    queue: str  # the work queue it failed in
    traceback: str
    size: int

    @classmethod
    def from_delivery(cls, delivery: Delivery) -> DeadLetterRecord:
        p = delivery.properties
        h = p.headers or {}
        common: dict[str, Any] = {
            "id": _text(p.message_id) or body_id(delivery.body),
            "type": _text(p.type) or None,
            "size": len(delivery.body),
        }
        if ATTEMPTS in h:
            return cls(
                **common,
                reason=_text(h.get(ERROR_HEADER)),
                error_type=_text(h.get(ERROR_TYPE)),
                attempts=attempts(p),
                first_failure=_text(h.get(FIRST_FAILURE)) or None,
                last_failure=_text(h.get(LAST_FAILURE)) or None,
                exchange=_text(h.get(ORIGINAL_EXCHANGE)),
                routing_key=_text(h.get(ORIGINAL_ROUTING_KEY)),
                queue=_text(h.get(FAILED_QUEUE)),
                traceback=_text(h.get(TRACEBACK)),
            )
        death = _first_death(h)
        if death is not None:
            keys = death.get("routing-keys")
            keys = keys if isinstance(keys, list | tuple) and keys else [""]
            when = death.get("time")
            stamp = _timestamp(when) if isinstance(when, datetime) else None
            return cls(
                **common,
                reason=f"dead-lettered by RabbitMQ: {_text(h.get('x-first-death-reason'))}",
                error_type=_text(h.get("x-first-death-reason")),
                attempts=_count(death.get("count")),
                first_failure=stamp,
                last_failure=stamp,
                exchange=_text(h.get("x-first-death-exchange", death.get("exchange"))),
                routing_key=_text(keys[0]),
                queue=_text(h.get("x-first-death-queue", death.get("queue"))),
                traceback="",
            )
        # Published straight to the dead-letter queue by someone else: replay where it came from.
        return cls(
            **common,
            reason="no failure recorded",
            error_type="",
            attempts=0,
            first_failure=None,
            last_failure=None,
            exchange=delivery.exchange,
            routing_key=delivery.routing_key,
            queue=delivery.queue,
            traceback="",
        )


def _first_death(headers: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The `x-death` entry of the first dead-lettering (entries are newest first)."""
    deaths = headers.get("x-death")
    if not isinstance(deaths, list | tuple) or not deaths:
        return None
    queue, reason = headers.get("x-first-death-queue"), headers.get("x-first-death-reason")
    for entry in deaths:
        if isinstance(entry, Mapping) and entry.get("queue") == queue and entry.get("reason") == reason:
            return entry
    last = deaths[-1]
    return last if isinstance(last, Mapping) else None


def _timestamp(now: datetime | None) -> str:
    when = now or datetime.now(UTC)
    if when.tzinfo is None:  # pika decodes AMQP timestamps as naive UTC
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _text(value: Any) -> str:
    """A header value as text to show: bytes decoded with replacements, lone surrogates
    escaped (a terminal cannot print them)."""
    if value is None:
        return ""
    text = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    return _utf8(text)


def _count(value: Any) -> int | str:
    """An `x-death` count: a number, or what was there instead, as it is."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return 1 if value is None else _text(value)


def _utf8(text: str) -> str:
    """`text`, with what UTF-8 cannot encode (lone surrogates) written as escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return f"<{type(exc).__name__} whose message cannot be shown>"
