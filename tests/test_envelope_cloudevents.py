"""Envelopes against the official CloudEvents SDK for Python (issue 12, items 22-25).

The SDK writes, we read; we write, the SDK reads: structured JSON (its JSON format and its
v1 `from_json`/`from_dict`), RabbitMQ binary mode (`ce-` headers, the content type as the
`datacontenttype`), and its HTTP binary headers, which use the same `ce-` names.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pika
import pytest
from broker_under_test import plain_amqp_url
from cloudevents.core.bindings import rabbitmq
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from cloudevents.v1 import conversion, http

from routing.envelope import Envelope, amqp_timestamp, decode, encode, to_properties
from routing.errors import ValidationError
from routing.properties import Properties
from routing.schemas import SchemaRegistry
from routing.topology import Queue, Topology
from routing.transport import open_transport

REGISTRY = SchemaRegistry.bundled()
LOG = {"level": "error", "service": "billing", "message": "boom", "time": "2026-03-01T12:00:00Z"}


def _sdk_event(**extra: object) -> CloudEvent:
    attributes = {
        "type": "log.record",
        "source": "urn:svc:billing",
        "id": "e-1",
        "time": datetime(2026, 3, 1, 12, 0, 0, 250000, tzinfo=UTC),
        "subject": "invoice-7",
        "datacontenttype": "application/json",
        "tenant": "acme",
        **extra,
    }
    return CloudEvent(attributes=attributes, data=LOG)


# ------------------------------------------------------------------ the SDK reads ours


def _ours() -> Envelope:
    return Envelope.new(
        "log.record", LOG, source="urn:svc:billing", subject="invoice-7", extensions={"tenant": "acme"}
    )


def test_the_sdk_reads_our_structured_envelope() -> None:
    ours = _ours()
    body = encode(ours, registry=REGISTRY)
    props = to_properties(ours)
    event = rabbitmq.from_structured(rabbitmq.RabbitMQMessage({}, props.content_type, body), JSONFormat())
    attributes = event.get_attributes()
    assert {k: attributes[k] for k in ("id", "source", "type", "subject", "specversion", "tenant")} == {
        "id": ours.id, "source": "urn:svc:billing", "type": "log.record", "subject": "invoice-7",
        "specversion": "1.0", "tenant": "acme",
    }  # fmt: skip
    assert attributes["time"] == ours.parsed_time
    assert event.get_data() == LOG
    # The SDK's v1 API too: from_json on the body, from_dict on the JSON object.
    v1 = http.from_json(body)
    assert v1["id"] == ours.id and v1["tenant"] == "acme" and v1.data == LOG
    assert conversion.from_dict(http.CloudEvent, json.loads(body))["type"] == "log.record"


def test_the_sdk_reads_our_ce_headers_as_rabbitmq_binary_attributes() -> None:
    """Our `ce-` headers are the binding's: the SDK's binary reader finds every attribute."""
    ours = _ours()
    props = to_properties(ours, ce_headers=True)
    headers = {k: str(v) for k, v in props.headers.items()}
    data = json.dumps(LOG).encode()
    event = rabbitmq.from_binary(rabbitmq.RabbitMQMessage(headers, "application/json", data), JSONFormat())
    assert event.get_id() == ours.id and event.get_type() == "log.record"
    assert event.get_extension("tenant") == "acme" and event.get_data() == LOG


# ------------------------------------------------------------------ we read the SDK's


def test_we_read_the_sdks_structured_event() -> None:
    message = rabbitmq.to_structured(_sdk_event(), JSONFormat())
    envelope = decode(message.body, Properties(content_type=message.content_type), registry=REGISTRY)
    assert (envelope.id, envelope.type, envelope.subject) == ("e-1", "log.record", "invoice-7")
    assert envelope.parsed_time == datetime(2026, 3, 1, 12, 0, 0, 250000, tzinfo=UTC)
    assert envelope.extensions == {"tenant": "acme"} and envelope.data == LOG


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8"])
def test_we_read_the_sdks_rabbitmq_binary_event(content_type: str) -> None:
    message = rabbitmq.to_binary(_sdk_event(datacontenttype=content_type), JSONFormat())
    props = Properties(content_type=message.content_type, headers=message.headers)
    envelope = decode(message.body, props, registry=REGISTRY)
    assert (envelope.id, envelope.source, envelope.type) == ("e-1", "urn:svc:billing", "log.record")
    assert envelope.datacontenttype == content_type  # item 24: parameters kept
    assert envelope.parsed_time == datetime(2026, 3, 1, 12, 0, 0, 250000, tzinfo=UTC)
    assert envelope.extensions == {"tenant": "acme"} and envelope.data == LOG


def test_we_read_the_sdks_http_binary_headers() -> None:
    headers, body = conversion.to_binary(
        http.CloudEvent(
            {"type": "log.record", "source": "urn:svc:billing", "content-type": "application/json"}, LOG
        )
    )
    content_type = headers.pop("content-type", None)
    envelope = decode(body, Properties(content_type=content_type, headers=headers), registry=REGISTRY)
    assert envelope.id == headers["ce-id"] and envelope.type == "log.record" and envelope.data == LOG


def test_a_native_amqp_timestamp_ce_time_is_accepted() -> None:
    """Item 22: pika decodes an AMQP timestamp header as a naive UTC datetime."""
    for value in (datetime(2026, 3, 1, 12, 0, 0), datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)):
        headers = {"ce-specversion": "1.0", "ce-id": "e-1", "ce-source": "urn:x", "ce-type": "log.record"}
        props = Properties(content_type="application/json", headers={**headers, "ce-time": value})
        envelope = decode(json.dumps(LOG).encode(), props, registry=REGISTRY)
        assert envelope.time == "2026-03-01T12:00:00Z"


@pytest.mark.broker
def test_a_timestamp_ce_time_header_through_rabbitmq(amqp_url: str, unique: str) -> None:
    """Item 22 on the wire: a binary-mode event whose ce-time is an AMQP timestamp (pika
    encodes a datetime header as one), read back with our transport."""
    queue = f"{unique}.ce"
    with open_transport(amqp_url) as t:
        t.declare(Topology.of(Queue(queue, auto_delete=True)))
        connection = pika.BlockingConnection(pika.URLParameters(plain_amqp_url(amqp_url)))
        try:
            headers = {"ce-specversion": "1.0", "ce-id": "e-9", "ce-source": "urn:x", "ce-type": "log.record"}
            connection.channel().basic_publish(
                "", queue, json.dumps(LOG).encode(),
                pika.BasicProperties(
                    content_type="application/json", headers={**headers, "ce-time": datetime(2026, 3, 1, 12, 0, 5)}
                ),
            )  # fmt: skip
        finally:
            connection.close()
        item = None
        for _ in range(50):
            if (item := t.get(queue)) is not None:
                break
            t.wait(0.1)
        assert item is not None
        envelope = decode(item.body, item.properties, registry=REGISTRY)
        t.ack(item)
    assert (envelope.id, envelope.time) == ("e-9", "2026-03-01T12:00:05Z")


@pytest.mark.parametrize(
    "text", ["2026-03-01t12:00:00z", "2026-03-01T12:00:00z", "2026-03-01t12:00:00.5+01:00"]
)
def test_rfc3339_lowercase_t_and_z_are_accepted(text: str) -> None:
    """Item 23: RFC 3339 section 5.6 allows lowercase `t` and `z`."""
    document = {
        "specversion": "1.0",
        "id": "1",
        "source": "urn:x",
        "type": "log.record",
        "time": text,
        "data": LOG,
    }
    envelope = decode(json.dumps(document).encode(), registry=REGISTRY)
    assert envelope.time == text and envelope.parsed_time is not None


def test_data_base64_is_refused_as_unsupported() -> None:
    """Item 25: the reason says what is not supported (not a bad extension name)."""
    event = http.CloudEvent({"type": "log.record", "source": "urn:x"}, b"\x00\x01")
    body = conversion.to_json(event)
    assert b"data_base64" in body
    with pytest.raises(ValidationError) as caught:
        decode(body, registry=REGISTRY)
    assert list(caught.value.problems) == [
        "data_base64: binary data (data_base64) is not supported; send JSON in data"
    ]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1969-12-31T23:59:59.5Z", -1), ("1970-01-01T00:00:00.5Z", 0), ("1969-12-31T23:59:59Z", -1)],
)
def test_timestamps_round_down(text: str, seconds: int) -> None:
    """Item 25: floor, not truncation; before the epoch AMQP (unsigned) gets no timestamp."""
    envelope = Envelope(id="1", source="urn:x", type="x.y", time=text)
    assert amqp_timestamp(envelope.parsed_time) == seconds  # type: ignore[arg-type]
    assert to_properties(envelope).timestamp == (seconds if seconds >= 0 else None)
