"""AMQP 0-9-1 basic properties as a frozen value.

It lives below both `envelope` (which maps an envelope onto it) and `transport` (which sends
it), so that neither has to import the other. `routing.transport.base` re-exports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from routing._frozen import EMPTY


@dataclass(frozen=True, slots=True, kw_only=True)
class Properties:
    """AMQP 0-9-1 basic properties. `timestamp` is seconds since the epoch; `expiration`
    a string of milliseconds, as on the wire."""

    content_type: str | None = None
    content_encoding: str | None = None
    headers: Mapping[str, Any] = EMPTY
    delivery_mode: int | None = None  # 2 = persistent
    priority: int | None = None
    correlation_id: str | None = None
    reply_to: str | None = None
    expiration: str | None = None
    message_id: str | None = None
    timestamp: int | None = None
    type: str | None = None
    user_id: str | None = None
    app_id: str | None = None
