"""Envelopes: the value, encoding, AMQP properties, decoding good and bad bodies, rejections."""

from __future__ import annotations

import json
from typing import Any

import pytest

from routing._frozen import FrozenDict
from routing.envelope import (
    CONTENT_TYPE,
    DEFAULT_SOURCE,
    ERROR_HEADER,
    ERROR_PATH_HEADER,
    MAX_BYTES,
    Envelope,
    Rejection,
    build_envelope,
    decode,
    decode_or_reject,
    encode,
    to_properties,
)
from routing.errors import DecodeError, EnvelopeError, ValidationError
from routing.properties import Properties
from routing.schemas import SchemaRegistry
from routing.transport.base import Properties as TransportProperties

REGISTRY = SchemaRegistry.bundled()
LOG = {"level": "error", "service": "billing", "message": "card declined", "time": "2024-05-01T12:00:00Z"}
RESIZE = {"id": 1, "action": "resize_image", "input": "in/cat.png", "width": 640, "height": 480}
SEED = b'{"id": 1, "action": "resize_image"}'  # what the seed tutorial's pika producer sends


def valid_document(**changes: Any) -> dict[str, Any]:
    document = {
        "specversion": "1.0",
        "id": "e-1",
        "source": "urn:svc:billing",
        "type": "log.record",
        "time": "2024-05-01T12:00:00.5+02:00",
        "data": dict(LOG),
    }
    document.update(changes)
    return {k: v for k, v in document.items() if v is not ...}


def body(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


# -- the value ---------------------------------------------------------------------------


def test_properties_moved_but_still_importable_from_the_transport() -> None:
    assert TransportProperties is Properties


def test_new_fills_id_time_and_content_type() -> None:
    a = Envelope.new("log.record", LOG, source="urn:svc:billing")
    b = Envelope.new("log.record", LOG, source="urn:svc:billing")
    assert a.id != b.id
    assert a.time is not None and a.time.endswith("Z")
    assert a.parsed_time is not None and a.parsed_time.utcoffset() is not None
    assert a.datacontenttype == "application/json"
    assert a.specversion == "1.0"
    REGISTRY.validate(a.to_dict())


def test_new_defaults_the_source() -> None:
    assert Envelope.new("x", None).source == DEFAULT_SOURCE


def test_envelope_is_frozen_and_hashable_with_nested_data() -> None:
    envelope = Envelope.new("t", {"a": [1, {"b": 2}]}, extensions={"tenant": "acme"})
    assert isinstance(envelope.data, FrozenDict)
    assert envelope.data["a"] == (1, FrozenDict({"b": 2}))
    assert isinstance(envelope.extensions, FrozenDict)
    assert hash(envelope) == hash(Envelope.from_dict(envelope.to_dict()))
    with pytest.raises(AttributeError):
        envelope.type = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        envelope.data["a"] = 1  # type: ignore[index]
    assert envelope.to_dict()["data"] == {"a": [1, {"b": 2}]}


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"id": ""}, "id"),
        ({"source": 7}, "source"),
        ({"type": None}, "type"),
        ({"specversion": "0.3"}, "specversion"),
        ({"time": "yesterday"}, "time"),
        ({"subject": ""}, "subject"),
        ({"extensions": {"Tenant": "x"}}, "Tenant"),
        ({"extensions": {"data": "x"}}, "data"),
        ({"extensions": {"ratio": 0.5}}, "ratio"),
        ({"extensions": {"big": 2**31}}, "big"),
    ],
)
def test_construction_refuses_what_cloudevents_forbids(changes: dict[str, Any], path: str) -> None:
    values: dict[str, Any] = {"id": "1", "source": "s", "type": "t", **changes}
    with pytest.raises(ValidationError) as caught:
        Envelope(**values)
    assert caught.value.path == path


def test_construction_names_every_problem() -> None:
    with pytest.raises(ValidationError) as caught:
        Envelope(id="", source="", type="t", time="nope")
    assert len(caught.value.problems) == 3


# -- encoding and AMQP properties ------------------------------------------------------------


def test_encode_is_compact_utf8_with_attributes_first_and_data_last() -> None:
    envelope = Envelope(
        id="1", source="s", type="t", subject="ü", data={"k": "é"}, extensions={"tenant": "a"}
    )
    raw = encode(envelope)
    assert (
        raw
        == '{"specversion":"1.0","id":"1","source":"s","type":"t","subject":"ü","tenant":"a","data":{"k":"é"}}'.encode()
    )


def test_encode_with_a_registry_refuses_invalid_data_before_writing() -> None:
    envelope = Envelope.new("cache.invalidate", {"cache": "products", "keys": "p-1", "reason": "price"})
    with pytest.raises(ValidationError) as caught:
        encode(envelope, registry=REGISTRY)
    assert "data.keys: expected array, got string" in caught.value.problems


def test_encode_refuses_unknown_types_unless_allowed() -> None:
    envelope = Envelope.new("made.up", {"x": 1})
    with pytest.raises(ValidationError, match=r"unknown event type 'made\.up'"):
        encode(envelope, registry=REGISTRY)
    assert encode(envelope, registry=SchemaRegistry.bundled(allow_unknown=True))


@pytest.mark.parametrize("data", [{"x": float("nan")}, {"x": {1, 2}}, {"x": "\ud800"}])
def test_encode_refuses_what_is_not_json(data: Any) -> None:
    with pytest.raises(EnvelopeError, match="cannot be written as JSON"):
        encode(Envelope(id="1", source="s", type="t", data=data))


def test_encode_refuses_bodies_consumers_would_refuse() -> None:
    envelope = Envelope(id="1", source="s", type="t", data="x" * MAX_BYTES)
    with pytest.raises(EnvelopeError, match="over the 1048576-byte limit"):
        encode(envelope)
    assert len(encode(envelope, max_bytes=None)) > MAX_BYTES


def test_to_properties_maps_the_attributes() -> None:
    envelope = Envelope(id="e-1", source="urn:svc:a", type="log.record", time="2024-05-01T12:00:00.9Z")
    props = to_properties(envelope)
    assert props.content_type == CONTENT_TYPE == "application/cloudevents+json"
    assert (props.message_id, props.type, props.app_id) == ("e-1", "log.record", "urn:svc:a")
    assert props.timestamp == 1714564800
    assert props.delivery_mode == 2
    assert props.headers == {}
    assert to_properties(envelope, persistent=False).delivery_mode == 1


def test_to_properties_offset_times_and_no_time() -> None:
    with_offset = Envelope(id="1", source="s", type="t", time="2024-05-01T14:00:00+02:00")
    assert to_properties(with_offset).timestamp == 1714564800
    assert to_properties(Envelope(id="1", source="s", type="t")).timestamp is None
    before_epoch = Envelope(id="1", source="s", type="t", time="1960-01-01T00:00:00Z")
    assert to_properties(before_epoch).timestamp is None  # AMQP timestamps are unsigned


def test_to_properties_leaves_out_values_too_long_for_amqp_shortstr() -> None:
    envelope = Envelope(id="1", source="urn:" + "s" * 300, type="t")
    assert to_properties(envelope).app_id is None


def test_ce_headers_copy_every_attribute_but_data() -> None:
    envelope = Envelope(
        id="e-1",
        source="urn:svc:a",
        type="log.record",
        time="2024-05-01T12:00:00Z",
        subject="invoice/7",
        datacontenttype="application/json",
        data={"k": 1},
        extensions={"tenant": "acme", "priority": 3},
    )
    headers = to_properties(envelope, ce_headers=True).headers
    assert dict(headers) == {
        "ce-specversion": "1.0",
        "ce-id": "e-1",
        "ce-source": "urn:svc:a",
        "ce-type": "log.record",
        "ce-time": "2024-05-01T12:00:00Z",
        "ce-subject": "invoice/7",
        "ce-tenant": "acme",
        "ce-priority": 3,
    }


# -- decoding envelopes --------------------------------------------------------------------


def test_decode_reads_what_encode_writes_with_its_properties() -> None:
    envelope = Envelope.new(
        "log.record", LOG, source="urn:svc:billing", subject="s-1", extensions={"tenant": "a"}
    )
    assert decode(encode(envelope), to_properties(envelope, ce_headers=True), registry=REGISTRY) == envelope


def test_decode_treats_null_attributes_as_absent() -> None:
    envelope = decode(body(valid_document(subject=None, dataschema=None)), registry=REGISTRY)
    assert envelope.subject is None and envelope.dataschema is None


@pytest.mark.parametrize("missing", ["specversion", "id", "source", "type"])
def test_every_required_attribute_missing_is_named(missing: str) -> None:
    # Without specversion only the content type says it is an envelope, not plain data.
    props = Properties(content_type=CONTENT_TYPE)
    with pytest.raises(ValidationError) as caught:
        decode(body(valid_document(**{missing: ...})), props, registry=REGISTRY)
    assert f"{missing}: required" in caught.value.problems
    with pytest.raises(ValidationError, match=f"{missing}: required"):
        decode(body(valid_document(**{missing: ...})), props, registry=None)


def test_a_body_without_specversion_is_plain_data() -> None:
    with pytest.raises(ValidationError, match=r"plain JSON body \(no specversion\) has no event type"):
        decode(body(valid_document(specversion=..., type=...)), registry=REGISTRY)


def test_all_missing_attributes_are_named_at_once() -> None:
    document = {"specversion": "1.0", "data": {}}
    with pytest.raises(ValidationError) as caught:
        decode(body(document), registry=REGISTRY)
    assert {"id: required", "source: required", "type: required"} <= set(caught.value.problems)


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"id": 5}, "id: expected string, got integer"),
        ({"source": ["a"]}, "source: expected string, got array"),
        ({"type": True}, "type: expected string, got boolean"),
        ({"subject": {}}, "subject: expected string, got object"),
        ({"specversion": 1.0}, 'specversion: must be "1.0"'),
        ({"specversion": "0.3"}, 'specversion: must be "1.0"'),
        ({"id": ""}, "id: must not be empty"),
        ({"dataschema": "not a uri"}, "dataschema:"),
        ({"datacontenttype": "json"}, "datacontenttype:"),
        ({"tenant": 1.5}, "tenant: expected string or boolean or integer, got number"),
    ],
)
def test_wrong_attribute_types(changes: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError) as caught:
        decode(body(valid_document(**changes)), registry=REGISTRY)
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems


@pytest.mark.parametrize("name", ["Tenant", "trace_id", "x-tenant", "ünï"])
def test_extra_properties_with_bad_names_are_refused(name: str) -> None:
    with pytest.raises(ValidationError) as caught:
        decode(body(valid_document(**{name: "x"})), registry=REGISTRY)
    assert len(caught.value.problems) == 1
    assert "must match ^[a-z0-9]+$" in caught.value.problems[0]
    assert name in caught.value.path


def test_extensions_with_good_names_are_kept() -> None:
    envelope = decode(body(valid_document(tenant="acme", retries=2, urgent=True)), registry=REGISTRY)
    assert dict(envelope.extensions) == {"tenant": "acme", "retries": 2, "urgent": True}


def test_extra_properties_in_data_are_refused() -> None:
    data = {**LOG, "colour": "red"}
    with pytest.raises(ValidationError) as caught:
        decode(body(valid_document(data=data)), registry=REGISTRY)
    assert caught.value.problems == ("data.colour: not allowed here",)


@pytest.mark.parametrize(
    "time", ["2024-05-01", "2024-05-01 12:00:00Z", "2024-13-01T00:00:00Z", "2024-05-01T12:00:00", "soon", ""]
)
def test_bad_time_is_refused(time: str) -> None:
    with pytest.raises(ValidationError) as caught:
        decode(body(valid_document(time=time)), registry=REGISTRY)
    assert caught.value.path == "time"


def test_bad_time_inside_data_is_refused_by_the_format_checker() -> None:
    with pytest.raises(ValidationError) as caught:
        decode(body(valid_document(data={**LOG, "time": "2024-02-30T00:00:00Z"})), registry=REGISTRY)
    assert caught.value.problems == ('data.time: not a valid date-time: "2024-02-30T00:00:00Z"',)


def test_every_failing_path_is_named() -> None:
    document = valid_document(
        id="", type="cache.invalidate", data={"cache": "", "keys": "k", "reason": "r", "version": -1}
    )
    with pytest.raises(ValidationError) as caught:
        decode(body(document), registry=REGISTRY)
    assert set(caught.value.problems) == {
        "id: must not be empty",
        "data.cache: must not be empty",
        "data.keys: expected array, got string",
        "data.version: -1 is less than the minimum 0",
    }


def test_decode_without_a_registry_still_checks_attribute_types() -> None:
    with pytest.raises(ValidationError, match="id: must be a non-empty string"):
        decode(body(valid_document(id=3)), registry=None)
    assert decode(body(valid_document(type="made.up")), registry=None).type == "made.up"


# -- bad bodies ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xff\xfe{}", "not UTF-8: byte 0xff at offset 0"),
        (b'{"id": "caf\xe9"}', "not UTF-8: byte 0xe9 at offset 11"),
        (b'{"specversion": "1.0", "id": "1"', "not JSON: truncated"),
        (b'{"a": [1, 2', "not JSON: truncated"),
        (b'{"a": 1,}', "not JSON: Expecting property name"),
        (b"", "empty body"),
        (b"   \n", "empty body"),
        (b"[1, 2]", "expected a JSON object, got an array"),
        (b'"text"', "expected a JSON object, got a string"),
        (b"42", "expected a JSON object, got a number"),
        (b"null", "expected a JSON object, got null"),
        (b'{"a": NaN}', "not JSON: NaN"),
        (b'{"a": -Infinity}', "not JSON: -Infinity"),
        (b'{"a": 1e999}', "not JSON: 1e999 is beyond the range of a float"),
        (b'{"a": -1e400}', "not JSON: -1e400 is beyond the range of a float"),
        (b"[" * 200_000, "JSON nested too deeply"),
        (b"!!python/object:os.system {}", "not JSON"),
        (b"\x80\x04\x95\x00", "not UTF-8"),  # a pickle
    ],
)
def test_bodies_that_are_not_json_objects(raw: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode(raw, registry=REGISTRY)
    assert str(caught.value).startswith(reason)


def test_size_is_checked_before_decoding() -> None:
    # Not UTF-8 either: the size error proves nothing was decoded first.
    with pytest.raises(DecodeError, match=r"^body is 1048577 bytes, over the 1048576-byte limit"):
        decode(b"\xff" * (MAX_BYTES + 1), registry=REGISTRY)
    with pytest.raises(DecodeError, match="over the 10-byte limit"):
        decode(b'{"a": "bcdefgh"}', registry=REGISTRY, max_bytes=10)


def test_a_body_at_the_limit_is_accepted() -> None:
    envelope = Envelope.new("anything", {"pad": ""}, source="s")
    raw = encode(envelope)
    padded = encode(Envelope.new("anything", {"pad": "x" * (1000 - len(raw))}, source="s"))
    assert len(padded) == 1000
    assert decode(padded, registry=None, max_bytes=1000).data["pad"].startswith("x")


# -- plain JSON from producers that know nothing of envelopes --------------------------------


def test_plain_body_with_the_queue_event_type() -> None:
    raw = json.dumps(RESIZE).encode()
    envelope = decode(raw, None, registry=REGISTRY, event_type="task.resize_image")
    assert envelope.type == "task.resize_image"
    assert envelope.data == RESIZE
    assert envelope.source == DEFAULT_SOURCE
    assert envelope.id.startswith("sha256:")
    assert decode(raw, None, registry=REGISTRY, event_type="task.resize_image").id == envelope.id
    other = decode(
        json.dumps({**RESIZE, "id": 2}).encode(), None, registry=REGISTRY, event_type="task.resize_image"
    )
    assert other.id != envelope.id


def test_plain_body_takes_id_source_and_time_from_properties() -> None:
    props = Properties(
        type="task.resize_image", message_id="m-9", app_id="seed-producer", timestamp=1714564800
    )
    envelope = decode(json.dumps(RESIZE).encode(), props, registry=REGISTRY)
    assert (envelope.type, envelope.id, envelope.source) == ("task.resize_image", "m-9", "seed-producer")
    assert envelope.time == "2024-05-01T12:00:00Z"


def test_plain_body_reads_ce_headers() -> None:
    headers = {
        "ce-type": "task.resize_image",
        "ce-id": "h-1",
        "ce-source": "urn:x",
        "ce-tenant": "acme",
        "other": 1,
    }
    envelope = decode(json.dumps(RESIZE).encode(), Properties(headers=headers), registry=REGISTRY)
    assert (envelope.type, envelope.id, envelope.source) == ("task.resize_image", "h-1", "urn:x")
    assert dict(envelope.extensions) == {"tenant": "acme"}


def test_queue_event_type_wins_over_the_type_property() -> None:
    props = Properties(type="something.else", headers={"ce-type": "third"})
    envelope = decode(json.dumps(RESIZE).encode(), props, registry=REGISTRY, event_type="task.resize_image")
    assert envelope.type == "task.resize_image"
    assert decode(json.dumps(RESIZE).encode(), props, registry=None).type == "something.else"


def test_the_seed_tutorial_message_is_a_valid_resize_task() -> None:
    envelope = decode(SEED, None, registry=REGISTRY, event_type="task.resize_image")
    assert (envelope.type, envelope.data) == ("task.resize_image", {"id": 1, "action": "resize_image"})
    # Half of either shape is not enough, and the alternatives are named.
    with pytest.raises(ValidationError) as caught:
        decode(b'{"id": 1}', None, registry=REGISTRY, event_type="task.resize_image")
    assert caught.value.problems == ("data: needs one of input+width+height, id+action",)


def test_plain_body_without_any_event_type_is_refused() -> None:
    with pytest.raises(ValidationError, match="has no event type") as caught:
        decode(SEED, Properties(content_type="application/json"), registry=REGISTRY)
    assert caught.value.path == "type"


def test_cloudevents_content_type_means_structured_even_without_specversion() -> None:
    with pytest.raises(ValidationError) as caught:
        decode(SEED, Properties(content_type=CONTENT_TYPE), registry=REGISTRY, event_type="task.resize_image")
    assert "specversion: required" in caught.value.problems


# -- the consumer's policy -------------------------------------------------------------------


def test_decode_or_reject_returns_the_envelope() -> None:
    envelope = Envelope.new("log.record", LOG, source="urn:svc:a")
    assert decode_or_reject(encode(envelope), to_properties(envelope), registry=REGISTRY) == envelope


@pytest.mark.parametrize(
    ("raw", "event_type", "reason", "path"),
    [
        (b"\xff", None, "not UTF-8", ""),
        (b'{"a"', None, "not JSON: truncated", ""),
        (b"x" * (MAX_BYTES + 1), None, "body is", ""),
        (SEED, None, "type: a plain JSON body (no specversion) has no event type", "type"),
        (b'{"id": 1}', "task.resize_image", "data: needs one of input+width+height, id+action", "data"),
        (b'{"k": "v"}', "made.up", "type: unknown event type 'made.up'", "type"),
        (b"[" * 5000 + b"]" * 5000, None, "JSON nested too deeply", ""),
    ],
)
def test_decode_or_reject_never_raises(raw: bytes, event_type: str | None, reason: str, path: str) -> None:
    outcome = decode_or_reject(raw, None, registry=REGISTRY, event_type=event_type)
    assert isinstance(outcome, Rejection)
    assert outcome.reason.startswith(reason)
    assert outcome.path == path
    assert outcome.headers == {ERROR_HEADER: outcome.reason, ERROR_PATH_HEADER: path}


def test_decode_or_reject_survives_deep_data_and_odd_properties() -> None:
    deep = b'{"specversion":"1.0","id":"1","source":"s","type":"t","data":' + b"[" * 900 + b"]" * 900 + b"}"
    outcome = decode_or_reject(deep, Properties(timestamp=2**62), registry=None)
    assert isinstance(outcome, Envelope | Rejection)
    odd = decode_or_reject(SEED, Properties(type="t", timestamp=2**62), registry=None)
    assert isinstance(odd, Envelope) and odd.time is None


def test_rejection_reasons_are_clipped_for_headers() -> None:
    data = {f"k{i}": i for i in range(300)}
    raw = json.dumps(valid_document(data=data)).encode()
    outcome = decode_or_reject(raw, None, registry=REGISTRY)
    assert isinstance(outcome, Rejection)
    assert len(outcome.reason) <= 1000 and outcome.reason.endswith("...")


def test_rejection_annotates_the_original_properties() -> None:
    original = Properties(message_id="m-1", headers={"tenant": "a"})
    annotated = Rejection("data.x: required", "data.x").annotate(original)
    assert annotated.message_id == "m-1"
    assert dict(annotated.headers) == {
        "tenant": "a",
        ERROR_HEADER: "data.x: required",
        ERROR_PATH_HEADER: "data.x",
    }
    assert Rejection("bad").annotate(None).headers[ERROR_PATH_HEADER] == ""


# -- building from text (what `routing build` and `routing publish` do) ----------------------


def test_build_envelope_parses_and_validates() -> None:
    envelope = build_envelope("log.record", json.dumps(LOG), source="urn:svc:a", registry=REGISTRY)
    assert envelope.data == LOG and envelope.source == "urn:svc:a"
    assert build_envelope("made.up", None, registry=None).data is None
    assert build_envelope("made.up", b"  ", registry=None).data is None


def test_build_envelope_refuses_bad_json_and_invalid_data() -> None:
    with pytest.raises(DecodeError, match="data: not JSON"):
        build_envelope("log.record", "{level: info}", registry=REGISTRY)
    with pytest.raises(ValidationError, match=r"data\.level: must be one of"):
        build_envelope("log.record", json.dumps({**LOG, "level": "loud"}), registry=REGISTRY)
