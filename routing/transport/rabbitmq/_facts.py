"""What both RabbitMQ transports tell of their connection, read from it: one set of properties."""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

from routing.transport.rabbitmq._url import Endpoint


class _Facts(Protocol):
    endpoint: Endpoint
    reconnects: int
    reconnect_timeout: float

    @property
    def server_version(self) -> str: ...


C = TypeVar("C", bound=_Facts)


class ConnectionFacts(Generic[C]):
    """The broker's version, the node connected to, the reconnects, and the reconnect timeout,
    for a transport whose connection is `_conn`."""

    _conn: C

    @property
    def server_version(self) -> str:
        """The version in the broker's `connection.start` ("3.10.8"); "" when it gave none."""
        return self._conn.server_version

    @property
    def endpoint(self) -> Endpoint:
        """The node connected to (or last connected to), of the URLs given."""
        return self._conn.endpoint

    @property
    def reconnects(self) -> int:
        """How many times the connection was made again after it dropped."""
        return self._conn.reconnects

    @property
    def reconnect_timeout(self) -> float:
        """How long a dropped connection is tried again before `ConnectionLost`."""
        return self._conn.reconnect_timeout

    @reconnect_timeout.setter
    def reconnect_timeout(self, seconds: float) -> None:
        self._conn.reconnect_timeout = seconds
