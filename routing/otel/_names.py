"""What the publish and worker spans share: destinations, the broker's address, headers read
as a propagation carrier, the CloudEvents attributes, the envelope's context, a send's end."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import Span, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from routing._frozen import FrozenDict
from routing.properties import Properties

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


ENVELOPE = TraceContextTextMapPropagator()  # the CloudEvents extension: these two fields only
CLOUDEVENTS = (
    ("id", "cloudevents.event_id"),
    ("source", "cloudevents.event_source"),
    ("type", "cloudevents.event_type"),
    ("subject", "cloudevents.event_subject"),
    ("specversion", "cloudevents.event_spec_version"),
)


def cloudevents(attributes: Mapping[str, Any]) -> dict[str, Any]:
    return {name: attributes[key] for key, name in CLOUDEVENTS if isinstance(attributes.get(key), str)}


def envelope_context(document: Mapping[str, Any]) -> trace.SpanContext | None:
    """The creation context an envelope carries, if a valid one."""
    parent = document.get("traceparent")
    if not isinstance(parent, str):
        return None
    carrier = {"traceparent": parent}
    state = document.get("tracestate")
    if isinstance(state, str):
        carrier["tracestate"] = state
    found = trace.get_current_span(ENVELOPE.extract(carrier)).get_span_context()
    return found if found.is_valid else None


def with_context(properties: Properties, span: Span) -> Properties:
    """`properties` with `span`'s context in the headers (replacing the one they carried)."""
    headers = dict(properties.headers or {})
    propagate.inject(headers, context=trace.set_span_in_context(span))
    return replace(properties, headers=FrozenDict(headers))


def failed(span: Span, error_type: str, description: str = "") -> None:
    span.set_attribute("error.type", error_type)
    span.set_status(Status(StatusCode.ERROR, description or None))


def end_send(
    owner: Any,  # an OtelInstrumentation: its `sent` and `operation_duration`
    span: Span,
    metric: dict[str, Any],
    started: float,
    exc: BaseException | None,
    error_type: str | None = None,
) -> None:
    if exc is not None:
        span.record_exception(exc)
        error_type = type(exc).__qualname__
    if error_type is not None:
        failed(span, error_type, str(exc or ""))
        metric = {**metric, "error.type": error_type}
    owner.operation_duration.record(time.perf_counter() - started, metric)
    owner.sent.add(1, metric)
    span.end()


def event_attributes(event: Any) -> dict[str, Any]:
    return {
        "id": event.id,
        "source": event.source,
        "type": event.type,
        "subject": event.subject,
        "specversion": event.specversion,
    }


def message_attributes(properties: Properties) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if properties.message_id:
        out["messaging.message.id"] = properties.message_id
    if properties.correlation_id:
        out["messaging.message.conversation_id"] = properties.correlation_id
    return out
