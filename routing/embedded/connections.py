"""The embedded broker's open connections, by name: what it closes from its side, as
`rabbitmqctl close_connection` (or the management API's DELETE /api/connections/{name})
closes one of RabbitMQ's."""

from __future__ import annotations

import itertools
import threading
from typing import Protocol

__all__ = ["Connections"]


class _Connection(Protocol):
    def sever(self, reason: str) -> None: ...


class Connections:
    """Open connections by name; the broker's lock guards them."""

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._open: dict[str, _Connection] = {}
        self._serial = itertools.count(1)

    def opened(self, connection: _Connection, name: str | None) -> str:
        """Register an open connection; its name (a fresh one for None)."""
        with self._lock:
            name = name or f"memory-{next(self._serial)}"
            self._open[name] = connection
            return name

    def closed(self, name: str) -> None:
        """Forget a closed connection (called under the broker's lock)."""
        self._open.pop(name, None)

    def names(self) -> list[str]:
        with self._lock:
            return list(self._open)

    def close(self, name: str, reason: str = "closed by the broker") -> None:
        """Close one client's connection from the broker's side: its exclusive queues are
        deleted, its unacked deliveries requeued, and the client sees `ConnectionLost`.
        `KeyError` when no open connection has that name."""
        with self._lock:
            connection = self._open[name]
        connection.sever(reason)
