"""What RabbitMQ refuses in a `basic.publish`, checked before routing, as its channel does.

Two kinds, each checked live on 3.10.8 and 4.0.5 (tests/test_embedded_validation.py):

- Values no AMQP frame can carry, or RabbitMQ cannot decode: a header int outside the
  signed 64-bit range, text that is not UTF-8, a NaN or infinite float (RabbitMQ answers
  541 INTERNAL_ERROR and closes the connection, losing everything in flight). The broker
  refuses them with `routing.properties.check_message`, the check the RabbitMQ transport
  makes before sending, so both raise the same `PropertyError`.
- What `rabbit_channel` refuses by closing the channel with 406, whether the message is
  routable or not: a `user_id` other than the connection's user, an `expiration` that is not
  an integer (`string:to_integer`: "+5" and "007" pass, " 5" and "1.5" do not), negative or
  above ten years, and on 3.10 a `delivery_mode` other than 1 or 2.
"""

from __future__ import annotations

from routing._amqp import MAX_EXPIRY_MS
from routing.errors import PreconditionFailed
from routing.properties import Properties

__all__ = ["check_channel", "expiration"]


def check_channel(properties: Properties, user: str) -> int | None:
    """Refuse as `rabbit_channel` does on publish (a 406 that closes the channel), before
    routing; returns the message's TTL in ms, or None."""
    if properties.user_id is not None and properties.user_id != user:
        raise PreconditionFailed(
            406,
            f"PRECONDITION_FAILED - user_id property set to '{properties.user_id}' but "
            f"authenticated user was '{user}'",
        )
    # A delivery_mode other than 1 or 2 (3.10 closes the channel, 4.0 takes it) never gets
    # here: `Properties` refuses it, on both transports.
    return expiration(properties)


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
    if value > MAX_EXPIRY_MS:
        _refuse(raw, f"{{value_too_large,{value}}}")
    return value


def _refuse(raw: str, why: str) -> None:
    raise PreconditionFailed(406, f"PRECONDITION_FAILED - invalid expiration '{raw}': {why}")
