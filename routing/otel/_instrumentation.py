"""`OtelInstrumentation`: the toolkit's hooks (`routing._telemetry`) as OpenTelemetry spans and
metrics, after the messaging semantic conventions for RabbitMQ.

Context travels twice with each message: in the envelope as the CloudEvents distributed
tracing extension (`traceparent`, `tracestate`: the creation context, written once, when the
event is made, never by a copy or a replay) and in the AMQP headers (the global propagator's
fields: the latest hop, the span that sent this copy).
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar, cast

from opentelemetry import propagate, trace
from opentelemetry.metrics import Meter
from opentelemetry.trace import Link, Span, SpanKind, Tracer

from routing import _telemetry
from routing.otel._names import (
    DURATION_BUCKETS,
    ENVELOPE,
    HEADERS,
    SYSTEM,
    cloudevents,
    destination,
    end_send,
    envelope_context,
    server,
    with_context,
)
from routing.otel._worker import Process
from routing.properties import Properties
from routing.transport.base import Delivery

__all__ = ["OtelInstrumentation"]

_MAX_CACHED = 1024  # destinations whose send attributes are kept
F = TypeVar("F", bound=Callable[..., Any])


class OtelInstrumentation:
    """The spans and metrics of `routing.otel.instrument()`."""

    def __init__(self, tracer: Tracer, meter: Meter, *, configured: Callable[[], bool] | None = None) -> None:
        """`configured`: whether a tracer or meter provider is there to take what is made
        (asked at most once a second until it says yes); None: one always is."""
        self.tracer = tracer
        self._configured = configured
        self._next_check = 0.0
        count, seconds = "{message}", "s"
        self.sent = meter.create_counter(
            "messaging.client.sent.messages", unit=count, description="Messages a producer sent."
        )
        self.consumed = meter.create_counter(
            "messaging.client.consumed.messages", unit=count, description="Messages a worker took."
        )
        self.operation_duration = meter.create_histogram(
            "messaging.client.operation.duration",
            unit=seconds,
            description="Duration of a send or settle operation.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.process_duration = meter.create_histogram(
            "messaging.process.duration",
            unit=seconds,
            description="Duration of the worker's handling of a message.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.retried = meter.create_counter(
            "routing.worker.retried.messages", unit=count, description="Messages sent to a retry queue."
        )
        self.dead_lettered = meter.create_counter(
            "routing.worker.dead_lettered.messages", unit=count, description="Messages dead-lettered."
        )
        # The send span `created` started for an envelope, with its id, for `sending` to end.
        self._pending: contextvars.ContextVar[tuple[Span, str] | None] = contextvars.ContextVar(
            "routing_otel_pending", default=None
        )
        self._sends: dict[tuple[Any, str, str], dict[str, Any]] = {}

    def idle(self) -> bool:
        """Nothing would take a span or a measurement (no provider is configured yet): the
        hooks then do nothing, as if not installed."""
        if self._configured is None:
            return False
        now = time.monotonic()
        if now < self._next_check:
            return True
        self._next_check = now + 1.0
        if self._configured():
            self._configured = None  # providers are set once: no need to ask again
            return False
        return True

    def created(self, document: dict[str, Any]) -> None:
        if self.idle():
            return
        span = self.tracer.start_span("send", kind=SpanKind.PRODUCER)
        self._pending.set((span, document["id"]))
        if not span.is_recording():  # no tracer provider: nothing to write
            return
        existing = envelope_context(document)
        if existing is not None:  # a forwarded event keeps its creation context: link to it
            span.add_link(existing)
        else:
            carrier: dict[str, str] = {}
            ENVELOPE.inject(carrier, context=trace.set_span_in_context(span))
            document.update(carrier)
        span.set_attributes(cloudevents(document))

    def publish(self, send: F, transport: Any, *, replay: bool) -> F:
        if self.idle():
            self._pending.set(None)
            return send

        def observed(
            exchange: str, routing_key: str, body: bytes, properties: Properties, *, mandatory: bool = False
        ) -> Any:
            with self.sending(transport, exchange, routing_key, properties, replay=replay) as properties:
                return send(exchange, routing_key, body, properties, mandatory=mandatory)

        return cast(F, observed)

    def apublish(self, send: F, transport: Any) -> F:
        if self.idle():
            self._pending.set(None)
            return send

        async def observed(
            exchange: str, routing_key: str, body: bytes, properties: Properties, *, mandatory: bool = False
        ) -> Any:
            with self.sending(transport, exchange, routing_key, properties, replay=False) as properties:
                return await send(exchange, routing_key, body, properties, mandatory=mandatory)

        return cast(F, observed)

    def sending(
        self, transport: Any, exchange: str, routing_key: str, properties: Properties, *, replay: bool
    ) -> _Send:
        """The send span and metrics around one publish."""
        pending = self._pending.get()
        span = None
        if pending is not None:
            self._pending.set(None)
            if properties.message_id in (pending[1], None):
                span = pending[0]
        if span is None:
            links = None
            if replay:  # a dead letter published again: link to the span that dead-lettered it
                found = trace.get_current_span(propagate.extract(properties.headers or {}, getter=HEADERS))
                links = [Link(found.get_span_context())] if found.get_span_context().is_valid else None
            span = self.tracer.start_span("send", kind=SpanKind.PRODUCER, links=links)
        metric = self._send_attributes(transport, exchange, routing_key)
        if span.is_recording():
            span.update_name(f"send {metric['messaging.destination.name']}")
            span.set_attributes(metric)
            if routing_key:
                span.set_attribute("messaging.rabbitmq.destination.routing_key", routing_key)
            if properties.message_id:
                span.set_attribute("messaging.message.id", properties.message_id)
            if properties.correlation_id:
                span.set_attribute("messaging.message.conversation_id", properties.correlation_id)
            properties = with_context(properties, span)
        return _Send(self, span, properties, metric)

    def _send_attributes(self, transport: Any, exchange: str, routing_key: str) -> dict[str, Any]:
        """The attributes of a send's metrics (and span), made once per destination: a
        publisher sends to few, and the hot path should not build them each time."""
        key = (getattr(transport, "url", None), exchange, routing_key)
        found = self._sends.get(key)
        if found is None:
            if len(self._sends) >= _MAX_CACHED:
                self._sends.clear()
            found = self._sends[key] = {
                "messaging.system": SYSTEM,
                "messaging.operation.name": "send",
                "messaging.operation.type": "send",
                "messaging.destination.name": destination(exchange, routing_key),
                **server(transport),
            }
        return found

    def processing(self, transport: Any, delivery: Delivery) -> _telemetry.Trace:
        return _telemetry.Trace() if self.idle() else Process(self, transport, delivery)


class _Send:
    """One publish: its span and its metrics, ended when the `with` block is."""

    def __init__(
        self, owner: OtelInstrumentation, span: Span, properties: Properties, metric: dict[str, Any]
    ):
        self.owner, self.span, self.properties, self.metric = owner, span, properties, metric
        self.started = time.perf_counter()

    def __enter__(self) -> Properties:
        return self.properties

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        end_send(self.owner, self.span, self.metric, self.started, exc)
