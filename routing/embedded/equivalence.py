"""Redeclaring an existing exchange or queue: RabbitMQ 3.10's equivalence checks and texts,
and the 404/405 texts of an operation on a missing or locked entity.

`rabbit_misc:assert_args_equivalence`: the fields are compared first, then the arguments
RabbitMQ knows, in its own order; unknown `x-` arguments are never compared. Integers of
any width are one type class. When both sides have the argument the text shows the bare
values, when one side lacks it the other is shown with its AMQP type (texts checked on the
broker here).
"""

from __future__ import annotations

from typing import Any

from routing.errors import ChannelClosed, PreconditionFailed
from routing.topology import Exchange, Queue

__all__ = [
    "EXCHANGE_ARGUMENTS",
    "QUEUE_ARGUMENTS",
    "VHOST",
    "amqp_type",
    "check_exchange",
    "check_queue",
    "locked",
    "not_found",
]

VHOST = "/"


def locked(queue: str) -> ChannelClosed:
    """405: an exclusive queue of another connection, or a redeclare that differs in `exclusive`."""
    return ChannelClosed(
        405,
        f"RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{queue}' in vhost "
        f"'{VHOST}'. It could be originally declared on another connection or the exclusive "
        "property value does not match that of the original declaration.",
    )


def not_found(kind: str, name: str) -> ChannelClosed:
    return ChannelClosed(404, f"NOT_FOUND - no {kind} '{name}' in vhost '{VHOST}'")


# rabbit_amqqueue:declare_args/0 order (3.10), plus the quorum queue's delivery limit.
QUEUE_ARGUMENTS = (
    "x-expires",
    "x-message-ttl",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-in-memory-length",
    "x-max-in-memory-bytes",
    "x-max-priority",
    "x-overflow",
    "x-queue-mode",
    "x-single-active-consumer",
    "x-queue-type",
    "x-quorum-initial-group-size",
    "x-max-age",
    "x-stream-max-segment-size-bytes",
    "x-initial-cluster-size",
    "x-queue-leader-locator",
    "x-delivery-limit",
    "x-dead-letter-strategy",
)
EXCHANGE_ARGUMENTS = ("alternate-exchange",)


def amqp_type(value: Any) -> str:
    """The AMQP field type pika sends a Python value as."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "signedint" if -(2**31) <= value < 2**31 else "long"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "longstr"
    if isinstance(value, bytes):
        return "bytearray"
    if value is None:
        return "void"
    if isinstance(value, dict | tuple | list):
        return "array" if isinstance(value, tuple | list) else "table"
    return "table"


def _type_class(value: Any) -> str:
    kind = amqp_type(value)
    return "int" if kind in ("signedint", "long") else kind


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _inequivalent(kind: str, name: str, key: str, received: str, current: str) -> PreconditionFailed:
    return PreconditionFailed(
        406,
        f"PRECONDITION_FAILED - inequivalent arg '{key}' for {kind} '{name}' in vhost '{VHOST}': "
        f"received {received} but current is {current}",
    )


def _field(kind: str, name: str, key: str, current: Any, received: Any) -> None:
    if current != received:
        raise _inequivalent(kind, name, key, f"'{_show(received)}'", f"'{_show(current)}'")


def _arguments(
    kind: str, name: str, keys: tuple[str, ...], current: dict[str, Any], received: dict[str, Any]
) -> None:
    for key in keys:
        old, new = current.get(key), received.get(key)
        if old is None and new is None:
            continue
        if old is None or new is None:
            shown = [
                f"the value '{_show(v)}' of type '{amqp_type(v)}'" if v is not None else "none"
                for v in (new, old)
            ]
            raise _inequivalent(kind, name, key, shown[0], shown[1])
        if _type_class(old) != _type_class(new) or old != new:
            raise _inequivalent(kind, name, key, f"'{_show(new)}'", f"'{_show(old)}'")


def check_exchange(current: Exchange, received: Exchange) -> None:
    """Raise the 406 RabbitMQ answers when `received` redeclares `current` differently."""
    name = current.name
    _field("exchange", name, "type", str(current.type), str(received.type))
    _field("exchange", name, "durable", current.durable, received.durable)
    _field("exchange", name, "auto_delete", current.auto_delete, received.auto_delete)
    _field("exchange", name, "internal", current.internal, received.internal)
    _arguments("exchange", name, EXCHANGE_ARGUMENTS, current.declare_arguments, received.declare_arguments)


def check_queue(current: Queue, received: Queue) -> None:
    """Raise the 406 RabbitMQ answers when `received` redeclares `current` differently.
    (An `exclusive` mismatch is a 405, checked by the broker before this.)"""
    name = current.name
    _field("queue", name, "durable", current.durable, received.durable)
    _field("queue", name, "auto_delete", current.auto_delete, received.auto_delete)
    _arguments("queue", name, QUEUE_ARGUMENTS, current.declare_arguments, received.declare_arguments)
