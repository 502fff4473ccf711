"""Publisher.emit builds the event's JSON directly; it must send what publishing
`Envelope.new(...)` sends, and refuse what `Envelope` refuses."""

from __future__ import annotations

import json

import pytest

from routing import Envelope, Publisher, ValidationError, encode, open_transport, to_properties
from routing.embedded import forget
from routing.schemas import SchemaRegistry
from routing.topology import Queue, Topology

DATA = {
    "level": "info",
    "service": "api",
    "message": "m",
    "time": "2026-01-01T00:00:00Z",
    "fields": {"a": [1]},
}


@pytest.fixture
def sent(unique: str):  # type: ignore[no-untyped-def]
    """Publish through a Publisher on the embedded broker; returns (body, properties)."""
    url = f"memory://{unique}"
    transport = open_transport(url)
    transport.declare(Topology.of(Queue("q")))

    def publish(how: str, **options: object):  # type: ignore[no-untyped-def]
        publisher = Publisher(transport, source="urn:s", **options)  # type: ignore[arg-type]
        kwargs = {"subject": "sub", "extensions": {"tenant": "acme", "shard": 3}}
        if how == "emit":
            publisher.emit("", "q", "log.record", DATA, **kwargs)  # type: ignore[arg-type]
        else:
            publisher.publish("", "q", Envelope.new("log.record", DATA, source="urn:s", **kwargs))  # type: ignore[arg-type]
        assert publisher.flush() == []
        delivery = transport.get("q")
        assert delivery is not None
        transport.ack(delivery)
        return delivery.body, delivery.properties

    yield publish
    transport.close()
    forget(url)


@pytest.mark.parametrize("ce_headers", [False, True])
def test_emit_sends_what_publishing_an_envelope_sends(sent, ce_headers: bool) -> None:  # type: ignore[no-untyped-def]
    emitted_body, emitted = sent("emit", ce_headers=ce_headers)
    built_body, built = sent("publish", ce_headers=ce_headers)
    a, b = json.loads(emitted_body), json.loads(built_body)
    for varying in ("id", "time"):
        assert a.pop(varying) != b.pop(varying)
    assert list(a) == list(b) and a == b  # same attributes, same order
    headers = {k: v for k, v in emitted.headers.items() if k not in ("ce-id", "ce-time")}
    assert headers == {k: v for k, v in built.headers.items() if k not in ("ce-id", "ce-time")}
    assert (emitted.content_type, emitted.type, emitted.app_id, emitted.delivery_mode) == (
        built.content_type,
        built.type,
        built.app_id,
        built.delivery_mode,
    )


def test_emit_matches_encode_of_the_same_envelope() -> None:
    event = Envelope.new("log.record", DATA, source="urn:s")
    assert to_properties(event).message_id == event.id
    assert json.loads(encode(event, registry=SchemaRegistry.bundled()))["data"] == DATA


@pytest.mark.parametrize(
    ("extensions", "path"),
    [({"id": "x"}, "id"), ({"data": "x"}, "data"), ({"Bad-Name": "x"}, ""), ({"big": 2**40}, "big")],
)
def test_emit_refuses_what_envelope_refuses(unique: str, extensions: dict[str, object], path: str) -> None:
    with pytest.raises(ValidationError):
        Envelope.new("log.record", DATA, extensions=extensions)  # type: ignore[arg-type]
    with open_transport(f"memory://{unique}") as transport, pytest.raises(ValidationError) as caught:
        Publisher(transport).emit("", "q", "log.record", DATA, extensions=extensions)  # type: ignore[arg-type]
    forget(f"memory://{unique}")
    if path:
        assert caught.value.path == path
