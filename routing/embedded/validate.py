"""What RabbitMQ refuses in a `basic.publish`, checked before routing, as its channel does.

Two kinds, each checked live on 3.10.8 and 4.0.5 (tests/test_embedded_validation.py):

- Values no AMQP frame can carry, or RabbitMQ cannot decode: a header int outside the
  signed 64-bit range, text that is not UTF-8, a NaN or infinite float (RabbitMQ answers
  541 INTERNAL_ERROR and closes the connection, losing everything in flight). They are
  refused before anything is sent, with `InvalidMessage` naming the field.
- What `rabbit_channel` refuses by closing the channel with 406, whether the message is
  routable or not: a `user_id` other than the connection's user, an `expiration` that is not
  an integer (`string:to_integer`: "+5" and "007" pass, " 5" and "1.5" do not), negative or
  above ten years, and on 3.10 a `delivery_mode` other than 1 or 2.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from routing.errors import InvalidMessage, PreconditionFailed
from routing.profiles import Profile
from routing.properties import Properties

MAX_EXPIRATION = 315_360_000_000
"""The largest `expiration` RabbitMQ takes, in ms (ten years; one more is `value_too_large`)."""

_INT64 = range(-(2**63), 2**63)
_TEXT_FIELDS = (
    "content_type",
    "content_encoding",
    "correlation_id",
    "reply_to",
    "expiration",
    "message_id",
    "type",
    "user_id",
    "app_id",
)


def check_encodable(routing_key: str, properties: Properties) -> None:
    """Refuse what AMQP cannot carry or RabbitMQ cannot decode, naming the field."""
    _text(routing_key, "the routing key")
    for name in _TEXT_FIELDS:
        value = getattr(properties, name)
        if value is not None:
            _text(value, f"property {name}")
    if properties.headers:
        _table(properties.headers, "header")


def _text(value: str, where: str) -> None:
    try:
        value.encode()
    except UnicodeEncodeError as exc:
        raise InvalidMessage(f"{where} is not valid UTF-8 ({exc.reason} at {exc.start})") from None


def _table(table: Mapping[str, Any], where: str) -> None:
    for key, value in table.items():
        _text(key, f"{where} name {key!r}")
        _value(value, f"{where} {key!r}")


def _value(value: Any, where: str) -> None:
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int):
        if value not in _INT64:
            raise InvalidMessage(f"{where} is {value}, outside AMQP's signed 64-bit range")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidMessage(
                f"{where} is {value}: RabbitMQ closes the connection (541) on a non-finite float"
            )
    elif isinstance(value, str):
        _text(value, where)
    elif isinstance(value, Mapping):
        _table(value, where)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _value(item, f"{where}[{i}]")


def check_channel(properties: Properties, user: str, profile: Profile) -> int | None:
    """Refuse as `rabbit_channel` does on publish (a 406 that closes the channel), before
    routing; returns the message's TTL in ms, or None."""
    if properties.user_id is not None and properties.user_id != user:
        raise PreconditionFailed(
            406,
            f"PRECONDITION_FAILED - user_id property set to '{properties.user_id}' but "
            f"authenticated user was '{user}'",
        )
    ttl = expiration(properties)
    mode = properties.delivery_mode
    if mode is not None and mode not in (1, 2) and profile.refuses_unknown_delivery_mode:
        raise PreconditionFailed(
            406, f"PRECONDITION_FAILED - invalid message: {{delivery_mode_unknown,{mode}}}"
        )
    return ttl


def expiration(properties: Properties) -> int | None:
    """The per-message TTL in ms, parsed as `rabbit_basic:parse_expiration` does, or None."""
    raw = properties.expiration
    if raw is None:
        return None
    digits = raw[1:] if raw[:1] in ("+", "-") else raw
    end = 0
    while end < len(digits) and "0" <= digits[end] <= "9":
        end += 1
    if not end:
        _refuse(raw, "no_integer")
    if end < len(digits):
        _refuse(raw, f'{{leftover_string,"{digits[end:]}"}}')
    value = int(raw[: len(raw) - len(digits) + end])
    if value < 0:
        _refuse(raw, f"{{value_negative,{value}}}")
    if value > MAX_EXPIRATION:
        _refuse(raw, f"{{value_too_large,{value}}}")
    return value


def _refuse(raw: str, why: str) -> None:
    raise PreconditionFailed(406, f"PRECONDITION_FAILED - invalid expiration '{raw}': {why}")
