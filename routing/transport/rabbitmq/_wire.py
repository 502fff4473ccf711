"""What crosses the wire: `Properties` from pika's, and pika's table codec made ours.

pika 1.3/1.4 cannot encode a float in a field table (it raises), decodes AMQP floats and
doubles with `int()` (1.5 arrives as 1) and reads decimals as signed (amqplib's and
RabbitMQ's are unsigned: 3000000000 arrives negative). Publishing uses our own codec
(`routing._amqp`) directly; what pika still encodes (declare arguments, client properties)
and everything it decodes (deliveries) goes through the same codec here: pika's table
functions look `encode_value`/`decode_value` up by name in `pika.data`, so those two names
are pointed at ours, once, when this module is imported.
"""

from __future__ import annotations

from typing import Any

import pika
import pika.data

from routing import _amqp
from routing._frozen import EMPTY, FrozenDict
from routing.transport.base import Delivery, Properties


def _encode_value(pieces: list[Any], value: Any) -> int:
    encoded = _amqp.encode_value(value, "argument")
    pieces.append(encoded)
    return len(encoded)


if pika.data.encode_value is not _encode_value:  # once, even if this module is reloaded
    pika.data.encode_value = _encode_value
    pika.data.decode_value = _amqp.decode_value


def from_pika(p: Any) -> Properties:
    headers = p.headers
    return Properties(
        content_type=p.content_type,
        content_encoding=p.content_encoding,
        headers=FrozenDict(headers) if headers else EMPTY,
        delivery_mode=p.delivery_mode,
        priority=p.priority,
        correlation_id=p.correlation_id,
        reply_to=p.reply_to,
        expiration=p.expiration,
        message_id=p.message_id,
        timestamp=p.timestamp,
        type=p.type,
        user_id=p.user_id,
        app_id=p.app_id,
    )


def delivery(method: Any, props: Any, body: bytes, queue: str, owner: Any) -> Delivery:
    """A `Delivery` from pika's Basic.Deliver or Basic.GetOk; `owner` acks it."""
    return Delivery(
        body,
        from_pika(props),
        method.exchange,
        method.routing_key,
        queue,
        method.delivery_tag,
        method.redelivered,
        owner,
    )
