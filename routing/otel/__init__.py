"""OpenTelemetry tracing and metrics for publishers and workers (the `otel` extra).

    import routing.otel
    routing.otel.instrument()         # once, at start-up: the global tracer and meter providers

Nothing is instrumented until `instrument()` is called: importing the toolkit never imports
OpenTelemetry. Once called, the spans and metrics go to the providers given, else to the
global ones; until a global provider is configured the hooks do nothing (they look again at
most once a second, so one configured later takes effect within a second). `routing worker --metrics-port PORT` calls `instrument()` with a Prometheus
endpoint's meter provider (`serve_metrics`).

Spans (kind, name): `send EXCHANGE:KEY` (PRODUCER) per publish and per retry or dead-letter
copy; `process EXCHANGE:KEY:QUEUE` (CONSUMER) around the worker's handling of a delivery, a
child of the context in its headers; `ack|nack|reject EXCHANGE:KEY:QUEUE` (CLIENT, operation
type `settle`). A copy's and a `dlq replay`'s send spans link back to the original's creation
context and to the dead letter's send span respectively. Metrics:
`messaging.client.sent.messages`, `messaging.client.consumed.messages`,
`messaging.client.operation.duration`, `messaging.process.duration`,
`routing.worker.retried.messages`, `routing.worker.dead_lettered.messages`.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from routing import _telemetry
from routing.otel._instrumentation import OtelInstrumentation

__all__ = ["MetricsServer", "OtelInstrumentation", "instrument", "serve_metrics", "uninstrument"]

_SCOPE = "routing"
# The messaging conventions this follows (the RabbitMQ page, with the destination names).
SCHEMA_URL = "https://opentelemetry.io/schemas/1.30.0"


def _version() -> str:
    try:
        return metadata.version("routing")
    except metadata.PackageNotFoundError:  # run from a source tree
        return "0"


def instrument(
    *, tracer_provider: TracerProvider | None = None, meter_provider: MeterProvider | None = None
) -> OtelInstrumentation:
    """Trace and measure every publisher, worker and `dlq replay` of this process from now on;
    returns the instrumentation (calling it again replaces the previous one)."""
    version = _version()
    tracer = trace.get_tracer(_SCOPE, version, tracer_provider, schema_url=SCHEMA_URL)
    meter = metrics.get_meter(_SCOPE, version, meter_provider, schema_url=SCHEMA_URL)
    configured = None
    if tracer_provider is None and meter_provider is None:
        configured = _globals_configured
    instrumentation = OtelInstrumentation(tracer, meter, configured=configured)
    _telemetry.install(instrumentation)
    return instrumentation


def _globals_configured() -> bool:
    """Has a global tracer or meter provider been set (not the API's placeholders)?"""
    # The API's placeholder meter provider has no public name; the tracer's has.
    from opentelemetry.metrics._internal import _ProxyMeterProvider

    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider) or not isinstance(
        metrics.get_meter_provider(), _ProxyMeterProvider
    )


def uninstrument() -> None:
    """Stop tracing and measuring (what `instrument` started)."""
    _telemetry.install(None)


@dataclass(frozen=True, slots=True)
class MetricsServer:
    """A Prometheus endpoint (`http://ADDRESS:PORT/metrics`) and the meter provider it serves."""

    meter_provider: MeterProvider
    address: str
    port: int
    _server: Any

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        shutdown = getattr(self.meter_provider, "shutdown", None)
        if shutdown is not None:
            shutdown()


def serve_metrics(port: int, *, address: str = "0.0.0.0") -> MetricsServer:
    """Serve a new meter provider's metrics for Prometheus on `address:port` (port 0: any free
    one, see `.port`), from a daemon thread; pass `.meter_provider` to `instrument`."""
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry()  # its own: two servers in one process do not mix
    reader = PrometheusMetricReader(registry=registry)
    provider = SdkMeterProvider(metric_readers=[reader])
    server, _thread = start_http_server(port, addr=address, registry=registry)
    return MetricsServer(provider, address, server.server_port, server)
