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
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from types import TracebackType
from typing import Any, TypeVar, cast

from opentelemetry import context, propagate, trace
from opentelemetry.metrics import Meter
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from routing import _telemetry
from routing._frozen import FrozenDict
from routing.otel._names import DURATION_BUCKETS, HEADERS, SYSTEM, destination, server
from routing.properties import Properties
from routing.transport.base import Delivery, Outcome, Publication
from routing.worker.steps import Ack, CallHandler, Nack, PublishCopy, Reject, Settled

__all__ = ["OtelInstrumentation"]

E = TypeVar("E")
R = TypeVar("R")

_ENVELOPE = TraceContextTextMapPropagator()  # the CloudEvents extension: these two fields only
_SETTLE = {Ack: "ack", Nack: "nack", Reject: "reject"}
_MAX_CACHED = 1024  # destinations whose send attributes are kept
_CLOUDEVENTS = (
    ("id", "cloudevents.event_id"),
    ("source", "cloudevents.event_source"),
    ("type", "cloudevents.event_type"),
    ("subject", "cloudevents.event_subject"),
    ("specversion", "cloudevents.event_spec_version"),
)


def _cloudevents(attributes: Mapping[str, Any]) -> dict[str, Any]:
    return {name: attributes[key] for key, name in _CLOUDEVENTS if isinstance(attributes.get(key), str)}


def _envelope_context(document: Mapping[str, Any]) -> trace.SpanContext | None:
    """The creation context an envelope carries, if a valid one."""
    parent = document.get("traceparent")
    if not isinstance(parent, str):
        return None
    carrier = {"traceparent": parent}
    state = document.get("tracestate")
    if isinstance(state, str):
        carrier["tracestate"] = state
    found = trace.get_current_span(_ENVELOPE.extract(carrier)).get_span_context()
    return found if found.is_valid else None


def _with_context(properties: Properties, span: Span) -> Properties:
    """`properties` with `span`'s context in the headers (replacing the one they carried)."""
    headers = dict(properties.headers or {})
    propagate.inject(headers, context=trace.set_span_in_context(span))
    return replace(properties, headers=FrozenDict(headers))


def _failed(span: Span, error_type: str, description: str = "") -> None:
    span.set_attribute("error.type", error_type)
    span.set_status(Status(StatusCode.ERROR, description or None))


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
        existing = _envelope_context(document)
        if existing is not None:  # a forwarded event keeps its creation context: link to it
            span.add_link(existing)
        else:
            carrier: dict[str, str] = {}
            _ENVELOPE.inject(carrier, context=trace.set_span_in_context(span))
            document.update(carrier)
        span.set_attributes(_cloudevents(document))

    def sending(
        self, transport: Any, exchange: str, routing_key: str, properties: Properties, *, replay: bool
    ) -> _telemetry.Sending:
        if self.idle():
            self._pending.set(None)
            return _telemetry.Unchanged(properties)
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
            properties = _with_context(properties, span)
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
        return _telemetry.Trace() if self.idle() else _Process(self, transport, delivery)


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
        _end_send(self.owner, self.span, self.metric, self.started, exc)


def _end_send(
    owner: OtelInstrumentation,
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
        _failed(span, error_type, str(exc or ""))
        metric = {**metric, "error.type": error_type}
    owner.operation_duration.record(time.perf_counter() - started, metric)
    owner.sent.add(1, metric)
    span.end()


class _Process(_telemetry.Trace):
    """One delivery in the worker: the `process` span around it, a `send` span for a retry or
    dead-letter copy, a `settle` span for its ack, nack or reject."""

    def __init__(self, owner: OtelInstrumentation, transport: Any, delivery: Delivery) -> None:
        self.owner, self.delivery = owner, delivery
        self.server = server(transport)
        self.name = destination(delivery.exchange, delivery.routing_key, delivery.queue)
        self.metric = {
            "messaging.system": SYSTEM,
            "messaging.operation.name": "process",
            "messaging.operation.type": "process",
            "messaging.destination.name": self.name,
            **self.server,
        }
        self.origin: trace.SpanContext | None = None  # the message's creation context
        self.error_type: str | None = None
        self.token: object = None

    def __enter__(self) -> _Process:
        d = self.delivery
        parent = propagate.extract(d.properties.headers or {}, getter=HEADERS)
        found = trace.get_current_span(parent).get_span_context()
        self.origin = found if found.is_valid else None
        attributes: dict[str, Any] = {
            **self.metric,
            "messaging.rabbitmq.message.delivery_tag": d.delivery_tag,
        }
        if d.routing_key:
            attributes["messaging.rabbitmq.destination.routing_key"] = d.routing_key
        if d.properties.message_id:
            attributes["messaging.message.id"] = d.properties.message_id
        if d.properties.correlation_id:
            attributes["messaging.message.conversation_id"] = d.properties.correlation_id
        self.span = self.owner.tracer.start_span(
            f"process {self.name}", context=parent, kind=SpanKind.CONSUMER, attributes=attributes
        )
        self.token = context.attach(trace.set_span_in_context(self.span))
        self.started = time.perf_counter()
        self.owner.consumed.add(1, self.metric)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        context.detach(cast(Any, self.token))
        if exc is not None:  # the worker stopped, or the broker refused a copy
            self.span.record_exception(exc)
            self.error_type = type(exc).__qualname__
            _failed(self.span, self.error_type, str(exc))
        metric = self.metric if self.error_type is None else {**self.metric, "error.type": self.error_type}
        self.owner.process_duration.record(time.perf_counter() - self.started, metric)
        self.span.end()

    def perform(self, perform: Callable[[E], R], effect: E) -> R:
        effect, end = self._begin(effect)
        try:
            result = perform(effect)
        except BaseException as exc:
            end(None, exc)
            raise
        end(result, None)
        return result

    async def aperform(self, perform: Callable[[E], Awaitable[R]], effect: E) -> R:
        effect, end = self._begin(effect)
        try:
            result = await perform(effect)
        except BaseException as exc:
            end(None, exc)
            raise
        end(result, None)
        return result

    def settled(self, settled: E) -> E:
        self.span.set_attribute("routing.settled", str(getattr(settled, "value", settled)))
        queue = {"messaging.destination.name": self.delivery.queue, "messaging.system": SYSTEM}
        if settled is Settled.RETRIED:
            self.owner.retried.add(1, queue)
        elif settled is Settled.DEAD_LETTERED:
            self.owner.dead_lettered.add(1, queue)
        return settled

    def _begin(self, effect: E) -> tuple[E, Callable[[object, BaseException | None], None]]:
        if isinstance(effect, CallHandler):
            return effect, self._handler(effect)
        if isinstance(effect, PublishCopy):
            span, metric, started = self._copy(effect)
            copied = replace(effect, properties=_with_context(effect.properties, span))

            def end_copy(result: object, exc: BaseException | None) -> None:
                error = None
                if isinstance(result, Publication) and result.outcome is not Outcome.CONFIRMED:
                    error = str(result.outcome or "unsettled")
                elif isinstance(result, BaseException):
                    error = type(result).__qualname__
                _end_send(self.owner, span, metric, started, exc, error)

            return cast(E, copied), end_copy
        operation = _SETTLE.get(type(effect))
        if operation is not None:
            return effect, self._settle(operation)
        return effect, lambda result, exc: None

    def _handler(self, effect: CallHandler) -> Callable[[object, BaseException | None], None]:
        event = effect.event
        self.span.set_attributes(_cloudevents(_attrs(event)))
        created = _envelope_context(event.extensions)
        if created is not None:
            if created != self.origin:  # a copy: its headers name the hop, the envelope the creation
                self.span.add_link(created)
            self.origin = created

        def end(result: object, exc: BaseException | None) -> None:
            failure = exc if exc is not None else result
            if isinstance(failure, BaseException):  # the handler raised: the message failed
                self.span.record_exception(failure)
                self.error_type = type(failure).__qualname__
                _failed(self.span, self.error_type, str(failure))

        return end

    def _copy(self, effect: PublishCopy) -> tuple[Span, dict[str, Any], float]:
        """The `send` span of a retry or dead-letter copy: a child of `process`, linked to
        the original's creation context."""
        name = destination("", effect.queue)
        metric = {
            "messaging.system": SYSTEM,
            "messaging.operation.name": "send",
            "messaging.operation.type": "send",
            "messaging.destination.name": name,
            **self.server,
        }
        links = [Link(self.origin)] if self.origin is not None and self.origin.is_valid else None
        span = self.owner.tracer.start_span(f"send {name}", kind=SpanKind.PRODUCER, links=links)
        span.set_attributes(
            {
                **metric,
                "messaging.rabbitmq.destination.routing_key": effect.queue,
                **_message(effect.properties),
            }
        )
        return span, metric, time.perf_counter()

    def _settle(self, operation: str) -> Callable[[object, BaseException | None], None]:
        metric = {
            **self.metric,
            "messaging.operation.name": operation,
            "messaging.operation.type": "settle",
        }
        attributes = {
            **metric,
            "messaging.rabbitmq.message.delivery_tag": self.delivery.delivery_tag,
            **_message(self.delivery.properties),
        }
        span = self.owner.tracer.start_span(
            f"{operation} {self.name}", kind=SpanKind.CLIENT, attributes=attributes
        )
        started = time.perf_counter()

        def end(result: object, exc: BaseException | None) -> None:
            nonlocal metric
            if exc is not None:
                span.record_exception(exc)
                _failed(span, type(exc).__qualname__, str(exc))
                metric = {**metric, "error.type": type(exc).__qualname__}
            self.owner.operation_duration.record(time.perf_counter() - started, metric)
            span.end()

        return end


def _attrs(event: Any) -> dict[str, Any]:
    return {
        "id": event.id,
        "source": event.source,
        "type": event.type,
        "subject": event.subject,
        "specversion": event.specversion,
    }


def _message(properties: Properties) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if properties.message_id:
        out["messaging.message.id"] = properties.message_id
    if properties.correlation_id:
        out["messaging.message.conversation_id"] = properties.correlation_id
    return out
