"""The checks every topology value makes at construction: names, enum fields, argument tables.

Each raises `TopologyError` with a message that says what to change.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from routing._amqp import encode_table
from routing.errors import PropertyError, TopologyError

MAX_NAME_BYTES = 255  # AMQP shortstr


def enum_value(kind: type[StrEnum], value: Any, what: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise TopologyError(f"{what}: {value!r} is not one of {allowed}") from None


def utf8_length(what: str, text: str) -> int:
    try:
        return len(text.encode())
    except UnicodeEncodeError:
        raise TopologyError(f"{what} {text[:40]!r} is not valid UTF-8 text (a lone surrogate?)") from None


def check_name(kind: str, name: object) -> None:
    if not isinstance(name, str):
        raise TopologyError(f"{kind} name must be a string, got {type(name).__name__}")
    if not name:
        raise TopologyError(f"{kind} name is empty: give it a name (server-named queues cannot be bound)")
    if utf8_length(f"{kind} name", name) > MAX_NAME_BYTES:
        raise TopologyError(
            f"{kind} name {name[:40]!r}... is {len(name.encode())} bytes: RabbitMQ allows {MAX_NAME_BYTES}"
        )
    if name.startswith("amq."):
        raise TopologyError(f"{kind} name {name!r}: the 'amq.' prefix is reserved by RabbitMQ; rename it")


def _check_json_value(where: str, value: Any) -> None:
    """Argument values must be what an AMQP table can carry and JSON can write."""
    if value is None or isinstance(value, str | bool | int | float):
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise TopologyError(f"{where}: table keys must be strings, got {k!r}")
            _check_json_value(f"{where}.{k}", v)
        return
    if isinstance(value, tuple | list):
        for i, v in enumerate(value):
            _check_json_value(f"{where}[{i}]", v)
        return
    raise TopologyError(f"{where}: {type(value).__name__} cannot be sent as an AMQP argument")


def check_arguments(where: str, arguments: Mapping[str, Any]) -> None:
    for key, value in arguments.items():
        if not isinstance(key, str):
            raise TopologyError(f"{where}: argument names must be strings, got {key!r}")
        _check_json_value(f"{where} argument {key!r}", value)
    check_encodable(where, arguments)


def check_encodable(where: str, arguments: Mapping[str, Any]) -> None:
    """What the AMQP table codec refuses (NaN, ints beyond 64 bits, names over 255 bytes,
    lone surrogates) RabbitMQ would answer by closing the connection or never receive."""
    try:
        encode_table(arguments, "")
    except PropertyError as exc:
        raise TopologyError(f"{where}: argument {exc.field.lstrip('.')} {exc.problem}") from None
