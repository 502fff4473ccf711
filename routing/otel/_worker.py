"""`Process`: one delivery in the worker as spans and metrics (see `routing.otel`)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from types import TracebackType
from typing import Any, TypeVar, cast

from opentelemetry import context, propagate, trace
from opentelemetry.trace import Link, Span, SpanKind

from routing import _telemetry
from routing.otel._names import (
    HEADERS,
    SYSTEM,
    cloudevents,
    destination,
    end_send,
    envelope_context,
    event_attributes,
    failed,
    message_attributes,
    server,
    with_context,
)
from routing.transport.base import Delivery, Outcome, Publication
from routing.worker.steps import Ack, CallHandler, Nack, PublishCopy, Reject, Settled

__all__ = ["Process"]

E = TypeVar("E")
R = TypeVar("R")

_SETTLE = {Ack: "ack", Nack: "nack", Reject: "reject"}


class Process(_telemetry.Trace):
    """One delivery in the worker: the `process` span around it, a `send` span for a retry or
    dead-letter copy, a `settle` span for its ack, nack or reject."""

    def __init__(self, owner: Any, transport: Any, delivery: Delivery) -> None:
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

    def __enter__(self) -> Process:
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
            failed(self.span, self.error_type, str(exc))
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
            copied = replace(effect, properties=with_context(effect.properties, span))

            def end_copy(result: object, exc: BaseException | None) -> None:
                error = None
                if isinstance(result, Publication) and result.outcome is not Outcome.CONFIRMED:
                    error = str(result.outcome or "unsettled")
                elif isinstance(result, BaseException):
                    error = type(result).__qualname__
                end_send(self.owner, span, metric, started, exc, error)

            return cast(E, copied), end_copy
        operation = _SETTLE.get(type(effect))
        if operation is not None:
            return effect, self._settle(operation)
        return effect, lambda result, exc: None

    def _handler(self, effect: CallHandler) -> Callable[[object, BaseException | None], None]:
        event = effect.event
        self.span.set_attributes(cloudevents(event_attributes(event)))
        created = envelope_context(event.extensions)
        if created is not None:
            if created != self.origin:  # a copy: its headers name the hop, the envelope the creation
                self.span.add_link(created)
            self.origin = created

        def end(result: object, exc: BaseException | None) -> None:
            failure = exc if exc is not None else result
            if isinstance(failure, BaseException):  # the handler raised: the message failed
                self.span.record_exception(failure)
                self.error_type = type(failure).__qualname__
                failed(self.span, self.error_type, str(failure))

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
                **message_attributes(effect.properties),
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
            **message_attributes(self.delivery.properties),
        }
        span = self.owner.tracer.start_span(
            f"{operation} {self.name}", kind=SpanKind.CLIENT, attributes=attributes
        )
        started = time.perf_counter()

        def end(result: object, exc: BaseException | None) -> None:
            nonlocal metric
            if exc is not None:
                span.record_exception(exc)
                failed(span, type(exc).__qualname__, str(exc))
                metric = {**metric, "error.type": type(exc).__qualname__}
            self.owner.operation_duration.record(time.perf_counter() - started, metric)
            span.end()

        return end
