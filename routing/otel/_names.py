"""The attribute values the spans and metrics share: destinations, the broker's address, headers
read as a propagation carrier."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.propagators.textmap import Getter

SYSTEM = "rabbitmq"
DEFAULT_EXCHANGE = "amq.default"  # how the conventions name the default exchange ("")
# The messaging conventions' advice for duration histograms (seconds).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)

_servers: dict[str, dict[str, Any]] = {}


def destination(exchange: str, routing_key: str, queue: str | None = None) -> str:
    """`messaging.destination.name`: `exchange:routing_key`, and `:queue` where a consumer took
    it (`amq.default` for the default exchange; the queue once when it is the routing key)."""
    name = f"{exchange or DEFAULT_EXCHANGE}:{routing_key}"
    return name if queue is None or queue == routing_key else f"{name}:{queue}"


def server(transport: object) -> dict[str, Any]:
    """`server.address` and `server.port` of a RabbitMQ transport (from its redacted URL);
    nothing for the embedded broker or a URL list."""
    url = getattr(transport, "url", "")
    if not isinstance(url, str):
        return {}
    found = _servers.get(url)
    if found is None:
        found = {}
        try:
            parts = urlsplit(url)
            if parts.scheme in ("amqp", "amqps") and parts.hostname and "," not in parts.netloc:
                found = {
                    "server.address": parts.hostname,
                    "server.port": parts.port or (5671 if parts.scheme == "amqps" else 5672),
                }
        except ValueError:  # a port that is no number: say nothing
            found = {}
        _servers[url] = found
    return found


class HeadersGetter(Getter[Mapping[str, Any]]):
    """AMQP headers as a carrier: text or bytes values, other keys ignored."""

    def get(self, carrier: Mapping[str, Any], key: str) -> list[str] | None:
        value = carrier.get(key)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        return [value] if isinstance(value, str) else None

    def keys(self, carrier: Mapping[str, Any]) -> list[str]:
        return [k for k in carrier if isinstance(k, str)]


HEADERS = HeadersGetter()
