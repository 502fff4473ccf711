"""`routing.otel`: one message published, handled, retried, dead-lettered and replayed gives the
spans, attributes, links and metrics of the OpenTelemetry messaging conventions, read back by the
OpenTelemetry SDK's own in-memory exporters; on the embedded broker and on RabbitMQ, with the
blocking worker and the asyncio one. And the Prometheus endpoint, read over HTTP.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import routing.aio
import routing.otel
from routing import Envelope, Publisher, decode
from routing.topology import Exchange, Topology
from routing.transport import open_transport
from routing.worker import App, RetryPolicy, Worker, dead_letter_queue
from routing.worker.async_runner import AsyncWorker

RESIZE = "task.resize_image"
VALID = {"input": "img1.jpg", "width": 10, "height": 10}
TWICE = RetryPolicy(initial=0.05, multiplier=1, max_delay=0.05, max_attempts=2)
WAIT = 15.0
TESTS = Path(__file__).parent


class Telemetry:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.metrics = InMemoryMetricReader()
        self.instrumentation = routing.otel.instrument(
            tracer_provider=tracer_provider, meter_provider=MeterProvider(metric_readers=[self.metrics])
        )

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def points(self) -> dict[str, list[Any]]:
        """Every metric's data points, by name."""
        out: dict[str, list[Any]] = {}
        data = self.metrics.get_metrics_data()
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    out.setdefault(metric.name, []).extend(metric.data.data_points)
        return out


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    found = Telemetry()
    yield found
    routing.otel.uninstrument()


def wait_until(check: Callable[[], bool], what: str, seconds: float = WAIT) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        time.sleep(0.02)


def failing_twice_app() -> tuple[App, list[Envelope]]:
    """Fails its first two attempts at each message (retried once, then dead-lettered); a replay
    is handled."""
    app = App(retry=TWICE)
    handled: list[Envelope] = []

    @app.handler(RESIZE)
    def resize(event: Envelope) -> None:
        handled.append(event)
        if len(handled) <= 2:
            raise ValueError(f"attempt {len(handled)} fails")

    return app, handled


def topology(app: App, queue: str, exchange: str) -> Topology:
    work = next(q for q in app.topology(queue).queues if q.name == queue)
    jobs = Exchange(name=exchange, auto_delete=True)
    return Topology.of(app.topology(queue), jobs, jobs.bind(work, "resize"))


def traceparent(context: Any) -> str:
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


def by_name(spans: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def check_the_story(
    telemetry: Telemetry, spans: list[ReadableSpan], exchange: str, queue: str, handled: list[Envelope]
) -> None:
    """What one message published, failed twice (retried, then dead-lettered), replayed and
    handled leaves behind."""
    # The message, and its replay: sent to where it was first published.
    send, replayed = sorted(by_name(spans, f"send {exchange}:resize"), key=lambda s: s.start_time or 0)
    assert send.kind is SpanKind.PRODUCER
    event = handled[0]
    a = send.attributes or {}
    assert a["messaging.system"] == "rabbitmq"
    assert a["messaging.operation.name"] == "send"
    assert a["messaging.operation.type"] == "send"
    assert a["messaging.destination.name"] == f"{exchange}:resize"
    assert a["messaging.rabbitmq.destination.routing_key"] == "resize"
    assert a["messaging.message.id"] == event.id
    assert a["cloudevents.event_id"] == event.id
    assert a["cloudevents.event_source"] == "urn:test:otel"
    assert a["cloudevents.event_type"] == RESIZE
    assert a["cloudevents.event_subject"] == "img1"
    # The envelope carries the send span's context (the CloudEvents distributed tracing extension).
    created = send.context
    assert event.extensions["traceparent"] == traceparent(created)

    processed = sorted((s for s in spans if s.name.startswith("process ")), key=lambda s: s.start_time or 0)
    assert [s.name for s in processed] == [
        f"process {exchange}:resize:{queue}",
        f"process amq.default:{queue}",  # back from the retry queue, by the default exchange
        f"process {exchange}:resize:{queue}",
    ]
    first, second, third = processed
    retry_name = f"send amq.default:{queue}.retry.50ms"
    for span in processed:
        assert span.kind is SpanKind.CONSUMER
        pa = span.attributes or {}
        assert pa["messaging.operation.type"] == "process"
        assert isinstance(pa["messaging.rabbitmq.message.delivery_tag"], int)
        assert pa["cloudevents.event_id"] == event.id
        assert pa["messaging.message.id"] == event.id
    # The first delivery: a child of the send span, failed with the handler's exception.
    assert first.parent is not None and first.parent.span_id == created.span_id
    assert first.status.status_code is StatusCode.ERROR
    assert (first.attributes or {})["error.type"] == "ValueError"
    assert (first.attributes or {})["routing.settled"] == "retried"

    (retry,) = by_name(spans, retry_name)
    (dead,) = by_name(spans, f"send amq.default:{queue}.dead")
    for copy, parent in ((retry, first), (dead, second)):
        assert copy.kind is SpanKind.PRODUCER
        assert copy.parent is not None and copy.parent.span_id == parent.context.span_id
        # A copy links back to the original's span.
        assert [link.context.span_id for link in copy.links] == [created.span_id]
    # The retry copy comes back: a child of the copy's send span, linked to the original's.
    assert second.parent is not None and second.parent.span_id == retry.context.span_id
    assert [link.context.span_id for link in second.links] == [created.span_id]
    assert (second.attributes or {})["routing.settled"] == "dead_lettered"
    # The replay: a send span linked to the dead letter's; its delivery handled and acked.
    assert [link.context.span_id for link in replayed.links] == [dead.context.span_id]
    assert third.parent is not None and third.parent.span_id == replayed.context.span_id
    assert third.status.status_code is StatusCode.UNSET
    assert (third.attributes or {})["routing.settled"] == "processed"

    acks = [s for s in spans if s.name.startswith("ack ")]
    assert len(acks) == 3
    for ack in acks:
        assert ack.kind is SpanKind.CLIENT
        assert (ack.attributes or {})["messaging.operation.type"] == "settle"
        assert (ack.attributes or {})["messaging.operation.name"] == "ack"
    assert {a.parent.span_id for a in acks if a.parent} == {p.context.span_id for p in processed}

    points = telemetry.points()

    def total(name: str) -> int:
        return sum(p.value for p in points.get(name, []))

    assert total("messaging.client.sent.messages") == 4  # the message, two copies, the replay
    assert total("messaging.client.consumed.messages") == 3
    assert total("routing.worker.retried.messages") == 1
    assert total("routing.worker.dead_lettered.messages") == 1
    assert sum(p.count for p in points["messaging.process.duration"]) == 3
    operations = sum(p.count for p in points["messaging.client.operation.duration"])
    assert operations == 4 + 3  # sends and acks


@pytest.fixture
def names(unique: str) -> tuple[str, str]:
    return f"{unique}-resize", f"{unique}-jobs"


def _clean(url: str, app: App, queue: str, exchange: str) -> None:
    with open_transport(url) as t:
        for q in app.topology(queue).queues:
            t.delete_queue(q.name)
        t.delete_exchange(exchange)


def test_a_message_retried_dead_lettered_and_replayed_with_the_blocking_worker(
    either_url: str, names: tuple[str, str], telemetry: Telemetry
) -> None:
    queue, exchange = names
    app, handled = failing_twice_app()
    try:
        with open_transport(either_url) as t, open_transport(either_url) as worker_transport:
            t.declare(topology(app, queue, exchange))
            publisher = Publisher(t, source="urn:test:otel")
            publisher.emit(exchange, "resize", RESIZE, VALID, subject="img1")
            assert publisher.flush() == []
            worker = Worker(app, worker_transport, queue, poll=0.05)
            thread = threading.Thread(target=worker.run)
            thread.start()
            try:
                wait_until(lambda: worker.stats.dead_lettered == 1, "the message dead-lettered")
                assert len(dead_letter_queue.replay(t, f"{queue}.dead").replayed) == 1
                wait_until(lambda: worker.stats.processed == 1, "the replay handled")
            finally:
                worker.stop()
                thread.join(10)
        assert worker.stats.retried == 1
        check_the_story(telemetry, telemetry.finished(), exchange, queue, handled)
    finally:
        _clean(either_url, app, queue, exchange)


def test_a_message_retried_dead_lettered_and_replayed_with_the_asyncio_worker(
    either_url: str, names: tuple[str, str], telemetry: Telemetry
) -> None:
    queue, exchange = names
    app, handled = failing_twice_app()

    async def story() -> None:
        async with (
            routing.aio.open_transport(either_url) as t,
            routing.aio.open_transport(either_url) as worker_transport,
        ):
            await t.declare(topology(app, queue, exchange))
            publisher = routing.aio.Publisher(t, source="urn:test:otel")
            await publisher.emit(exchange, "resize", RESIZE, VALID, subject="img1")
            assert await publisher.flush() == []
            worker = AsyncWorker(app, worker_transport, queue, poll=0.05)
            task = asyncio.create_task(worker.run())

            async def until(check: Callable[[], bool], what: str) -> None:
                deadline = time.monotonic() + WAIT
                while not check():
                    assert time.monotonic() < deadline, f"not within {WAIT} s: {what}"
                    await asyncio.sleep(0.02)

            try:
                await until(lambda: worker.stats.dead_lettered == 1, "the message dead-lettered")

                def replay() -> int:
                    with open_transport(either_url) as blocking:
                        return len(dead_letter_queue.replay(blocking, f"{queue}.dead").replayed)

                assert await asyncio.to_thread(replay) == 1
                await until(lambda: worker.stats.processed == 1, "the replay handled")
            finally:
                worker.stop()
                await task
            assert worker.stats.retried == 1

    try:
        asyncio.run(story())
        check_the_story(telemetry, telemetry.finished(), exchange, queue, handled)
    finally:
        _clean(either_url, app, queue, exchange)


def test_the_broker_address_is_on_rabbitmq_spans_only(
    either_url: str, names: tuple[str, str], telemetry: Telemetry
) -> None:
    queue, _ = names
    with open_transport(either_url) as t:
        t.declare(Topology.of(*(q for q in App().topology(queue).queues if q.name == queue)))
        try:
            publisher = Publisher(t)
            publisher.emit("", queue, RESIZE, VALID)
            publisher.flush()
        finally:
            t.delete_queue(queue)
    (span,) = telemetry.finished()
    assert span.name == f"send amq.default:{queue}"
    attributes = span.attributes or {}
    if either_url.startswith("memory:"):
        assert "server.address" not in attributes
    else:
        where = urllib.parse.urlsplit(either_url)
        assert (attributes["server.address"], attributes["server.port"]) == (where.hostname, where.port)


def test_the_envelope_with_its_trace_context_passes_the_schemas_and_the_cloudevents_sdk(
    memory: Any, telemetry: Telemetry
) -> None:
    from cloudevents.core.bindings import rabbitmq
    from cloudevents.core.formats.json import JSONFormat

    memory.declare(Topology.of(*(q for q in App().topology("jobs").queues if q.name == "jobs")))
    publisher = Publisher(memory, ce_headers=True)
    publisher.emit("", "jobs", RESIZE, VALID)  # validated against schemas/ on the way
    publisher.flush()
    delivery = memory.get("jobs")
    assert delivery is not None
    (span,) = telemetry.finished()
    context = traceparent(span.context)
    event = rabbitmq.from_structured(
        rabbitmq.RabbitMQMessage({}, delivery.properties.content_type, delivery.body), JSONFormat()
    )
    assert event.get_extension("traceparent") == context
    # The same context in the AMQP headers (and in the ce- headers of binary mode).
    assert delivery.properties.headers["traceparent"] == context
    assert delivery.properties.headers["ce-traceparent"] == context
    assert (
        decode(delivery.body, delivery.properties, registry=publisher.registry).extensions["traceparent"]
        == context
    )


def test_a_forwarded_event_keeps_its_creation_context(memory: Any, telemetry: Telemetry) -> None:
    memory.declare(Topology.of(*(q for q in App().topology("jobs").queues if q.name == "jobs")))
    created = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    event = Envelope.new(RESIZE, VALID, extensions={"traceparent": created})
    publisher = Publisher(memory)
    publisher.publish("", "jobs", event)
    publisher.flush()
    delivery = memory.get("jobs")
    assert delivery is not None
    assert decode(delivery.body, registry=None).extensions["traceparent"] == created
    (span,) = telemetry.finished()
    assert [f"{link.context.span_id:016x}" for link in span.links] == ["b7ad6b7169203331"]
    assert delivery.properties.headers["traceparent"].split("-")[2] == f"{span.context.span_id:016x}"


def test_a_plain_json_publish_carries_its_context_in_the_headers(memory: Any, telemetry: Telemetry) -> None:
    memory.declare(Topology.of(*(q for q in App().topology("jobs").queues if q.name == "jobs")))
    publisher = Publisher(memory)
    publisher.publish_json("", "jobs", b'{"input": "a.jpg", "width": 1, "height": 1}', event_type=RESIZE)
    publisher.flush()
    delivery = memory.get("jobs")
    assert delivery is not None
    (span,) = telemetry.finished()
    assert span.name == "send amq.default:jobs"
    assert delivery.properties.headers["traceparent"].split("-")[2] == f"{span.context.span_id:016x}"


def test_the_prometheus_endpoint_serves_the_metrics(memory: Any) -> None:
    server = routing.otel.serve_metrics(0, address="127.0.0.1")
    try:
        routing.otel.instrument(meter_provider=server.meter_provider)
        memory.declare(Topology.of(*(q for q in App().topology("jobs").queues if q.name == "jobs")))
        publisher = Publisher(memory)
        for _ in range(3):
            publisher.emit("", "jobs", RESIZE, VALID)
        publisher.flush()
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as response:
            assert response.status == 200
            text = response.read().decode()
    finally:
        routing.otel.uninstrument()
        server.close()
    sent = [line for line in text.splitlines() if line.startswith("messaging_client_sent_messages_total{")]
    assert len(sent) == 1 and sent[0].endswith(" 3.0"), text
    assert 'messaging_destination_name="amq.default:jobs"' in sent[0]
    assert 'messaging_system="rabbitmq"' in sent[0]
    assert "messaging_client_operation_duration_seconds_bucket{" in text


@pytest.mark.broker
def test_routing_worker_metrics_port_serves_prometheus(amqp_url: str, unique: str, tmp_path: Path) -> None:
    """`routing worker --metrics-port`: the worker's own metrics, read over HTTP while it runs."""
    from worker_apps import app as worker_app

    queue = f"{unique}.jobs"
    env = {
        **os.environ,
        "PYTHONPATH": str(TESTS),
        "PYTHONUNBUFFERED": "1",
        "ROUTING_TEST_WORK_LOG": str(tmp_path / "work.log"),
    }
    command = [sys.executable, "-m", "routing", "worker", "worker_apps:app", "--queue", queue]
    command += ["--metrics-port", "0", "--metrics-address", "127.0.0.1", "--url", amqp_url]
    log = tmp_path / "worker.log"  # a file, not a pipe nobody reads while the worker runs
    with log.open("w") as stderr:
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)
    try:
        assert process.stdout is not None
        address = None
        while address is None:
            line = process.stdout.readline()
            assert line, "the worker ended before it served its metrics"
            if line.startswith("metrics for Prometheus on "):
                address = line.split()[-1]
        with open_transport(amqp_url) as t:
            publisher = Publisher(t)
            publisher.emit("", queue, RESIZE, VALID)
            publisher.emit("", queue, RESIZE, {**VALID, "input": "poison.jpg"})  # fails, retried
            assert publisher.flush() == []

        def scrape() -> str:
            with urllib.request.urlopen(address, timeout=5) as response:
                assert response.status == 200
                return str(response.read().decode())

        try:
            wait_until(lambda: "routing_worker_retried_messages_total{" in scrape(), "a retry counted", 60)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{scrape()}\nthe worker's log:\n{log.read_text()}") from None
        text = scrape()
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
        with open_transport(amqp_url) as t:
            for q in worker_app.topology(queue).queues:
                t.delete_queue(q.name)
    consumed = [
        line for line in text.splitlines() if line.startswith("messaging_client_consumed_messages_total{")
    ]
    assert consumed and sum(float(line.rsplit(" ", 1)[1]) for line in consumed) >= 2, text
    assert f'messaging_destination_name="amq.default:{queue}"' in consumed[0]
    assert 'server_address="127.0.0.1"' in consumed[0]
    assert "messaging_process_duration_seconds_count{" in text
    assert process.returncode == 0


def test_the_toolkit_never_imports_opentelemetry_by_itself() -> None:
    """No cost without the extra: importing the toolkit, the CLI, the workers and the asyncio
    side loads no OpenTelemetry module (the hooks are no-ops until `routing.otel.instrument()`)."""
    code = (
        "import sys, routing, routing.aio, routing.worker, routing.cli, routing._telemetry as t\n"
        "assert t.installed() is None\n"
        "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry', 'prometheus_client'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_with_no_provider_configured_the_hooks_change_nothing(memory: Any) -> None:
    """`instrument()` with no tracer or meter provider anywhere: messages go out as without it
    (no trace context written), the cheap path the publish benchmark's row measures."""
    routing.otel.instrument()
    try:
        memory.declare(Topology.of(*(q for q in App().topology("jobs").queues if q.name == "jobs")))
        publisher = Publisher(memory)
        publisher.emit("", "jobs", RESIZE, VALID)
        publisher.flush()
    finally:
        routing.otel.uninstrument()
    delivery = memory.get("jobs")
    assert delivery is not None
    assert "traceparent" not in delivery.properties.headers
    assert "traceparent" not in decode(delivery.body, registry=None).extensions


def test_metrics_port_refuses_several_worker_processes() -> None:
    """Each process would need its own port: one line, exit 1, before anything connects."""
    from click.testing import CliRunner

    from routing.cli import main

    args = ["worker", "worker_apps:app", "--queue", "jobs", "--metrics-port", "0", "--concurrency", "2"]
    args += ["--no-declare", "--url", "amqp://guest:guest@127.0.0.1:1/"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert result.output.splitlines()[-1].startswith("Error: --metrics-port serves one process's metrics")
