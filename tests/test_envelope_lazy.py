"""Decoding with a registry: validated once, `data` frozen when first read, and the envelope the
same value, with the same errors, as one built by `Envelope.from_dict`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import routing.envelope._value as value_module
from routing._frozen import FrozenDict
from routing._json import parse_json_exact
from routing.envelope import Envelope, decode, decode_or_reject
from routing.errors import DecodeError, ValidationError
from routing.schemas import SchemaRegistry, bundled_directory

REGISTRY = SchemaRegistry.bundled()
LOG = {"level": "error", "service": "billing", "message": "card declined", "fields": {"tags": ["eu", 1]}}


def document(**changes: Any) -> dict[str, Any]:
    out = {
        "specversion": "1.0",
        "id": "e-1",
        "source": "urn:svc:billing",
        "type": "log.record",
        "time": "2024-05-01T12:00:00Z",
        "tenant": "acme",
        "data": LOG,
    }
    out.update(changes)
    return out


def body(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


def test_a_decoded_envelope_is_the_value_from_dict_builds() -> None:
    lazy = decode(body(document()), registry=REGISTRY)
    eager = Envelope.from_dict(document())
    assert lazy == eager and hash(lazy) == hash(eager) and repr(lazy) == repr(eager)
    assert lazy.to_dict() == eager.to_dict() == document()
    assert isinstance(lazy.data, FrozenDict) and lazy.data["fields"]["tags"] == ("eu", 1)
    assert isinstance(lazy.extensions, FrozenDict) and lazy.extensions == {"tenant": "acme"}
    with pytest.raises(AttributeError):
        lazy.data = {}  # type: ignore[misc]
    with pytest.raises(TypeError):
        lazy.data["level"] = "x"  # type: ignore[index]


def test_data_is_frozen_when_first_read(monkeypatch: pytest.MonkeyPatch) -> None:
    frozen: list[Any] = []
    real = value_module.freeze
    monkeypatch.setattr(value_module, "freeze", lambda v: frozen.append(v) or real(v))
    envelope = decode(body(document()), registry=REGISTRY)
    assert frozen == []  # decoding and validating froze nothing
    assert envelope.type == "log.record" and envelope.to_dict()["data"] == LOG
    assert frozen == []  # nor did to_dict, which copies the parsed data as it is
    first = envelope.data
    assert frozen == [LOG] and envelope.data is first  # once


def test_deep_data_is_frozen_at_once_so_too_deep_stays_a_decoding_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deep: Any = 1
    for _ in range(150):
        deep = [deep]
    frozen: list[Any] = []
    real = value_module.freeze
    monkeypatch.setattr(value_module, "freeze", lambda v: frozen.append(v) or real(v))
    registry = SchemaRegistry.bundled(allow_unknown=True)
    envelope = decode(body(document(type="made.up", data=deep)), registry=registry)
    assert len(frozen) == 1 and envelope.to_dict()["data"] == deep


def test_what_the_schema_lets_by_is_still_refused() -> None:
    # 1.0 is an integer to JSON Schema, not a CloudEvents extension value.
    with pytest.raises(ValidationError) as caught:
        decode(body(document(ratio=1.0)), registry=REGISTRY)
    assert caught.value.path == "ratio"
    rejected = decode_or_reject(body(document(ratio=1.0)), registry=REGISTRY)
    assert not isinstance(rejected, Envelope) and rejected.path == "ratio"


def test_a_registry_with_its_own_envelope_schema_leaves_the_checks_to_envelope(tmp_path: Path) -> None:
    lax = json.loads((bundled_directory() / "envelope.schema.json").read_text())
    lax["properties"]["time"] = {"type": "string"}  # any text
    (tmp_path / "envelope.schema.json").write_text(json.dumps(lax))
    registry = SchemaRegistry.from_directory(tmp_path)
    assert REGISTRY.checks_attributes and not registry.checks_attributes
    with pytest.raises(ValidationError) as caught:
        decode(body(document(time="yesterday")), registry=registry)
    assert caught.value.path == "time"


def test_integers_past_two_to_the_53_are_reported() -> None:
    assert parse_json_exact("[9007199254740992, -9007199254740992]") == (
        [2**53, -(2**53)],
        True,
    )
    assert parse_json_exact('{"a": [9007199254740993]}')[1] is False
    assert parse_json_exact('{"a": -9007199254740993}')[1] is False
    assert parse_json_exact('"90071992547409930000"')[1] is True  # a string is no integer
    big = decode(
        body(document(type="made.up", data={"n": 2**60})), registry=SchemaRegistry.bundled(allow_unknown=True)
    )
    assert big.data["n"] == 2**60


def test_a_body_too_deep_to_parse_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="nested too deeply"):
        decode(b'{"specversion": "1.0", "data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", registry=REGISTRY)


def test_fresh_ids_are_version_4_uuids_in_uuids_own_text() -> None:
    import uuid

    from routing.envelope._value import random_uuid

    ids = {random_uuid() for _ in range(2000)}
    assert len(ids) == 2000
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122
