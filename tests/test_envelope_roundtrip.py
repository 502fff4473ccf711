"""Property tests: valid envelopes survive encode + decode unchanged; no input makes the
consumer's policy raise."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from routing.envelope import RESERVED, Envelope, Rejection, decode, decode_or_reject, encode, to_properties
from routing.properties import Properties
from routing.schemas import SchemaRegistry

STRICT = SchemaRegistry.bundled()
LENIENT = SchemaRegistry.bundled(allow_unknown=True)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
zones = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-9, minutes=-30))])


@st.composite
def rfc3339(draw: st.DrawFn) -> str:
    moment = draw(
        st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=zones)
    )
    text = moment.isoformat(timespec=draw(st.sampled_from(["seconds", "milliseconds", "microseconds"])))
    return text.replace("+00:00", "Z") if draw(st.booleans()) else text


non_empty = st.text(min_size=1, max_size=30)
extension_names = st.from_regex(r"\A[a-z0-9]{1,12}\Z").filter(lambda name: name not in RESERVED)
extension_values = st.text(max_size=20) | st.booleans() | st.integers(-(2**31), 2**31 - 1)
unknown_types = st.from_regex(r"\A[a-z]{1,8}(\.[a-z_]{1,8}){0,3}\Z").filter(lambda t: t not in STRICT.types)


def envelopes(types: st.SearchStrategy[str], data: st.SearchStrategy[Any]) -> st.SearchStrategy[Envelope]:
    return st.builds(
        Envelope,
        id=non_empty,
        source=non_empty,
        type=types,
        time=st.none() | rfc3339(),
        subject=st.none() | non_empty,
        datacontenttype=st.none() | st.sampled_from(["application/json", "text/plain; charset=utf-8"]),
        dataschema=st.none() | st.from_regex(r"\A(https|urn):[!-~]{1,30}\Z"),
        data=data,
        extensions=st.dictionaries(extension_names, extension_values, max_size=4),
    )


log_records = st.fixed_dictionaries(
    {
        "level": st.sampled_from(["debug", "info", "warning", "error", "critical"]),
        "service": st.text(min_size=1, max_size=20),
        "message": st.text(max_size=40),
        "time": rfc3339(),
    },
    optional={
        "logger": non_empty,
        "host": non_empty,
        "trace_id": st.from_regex(r"\A[0-9a-f]{32}\Z"),
        "fields": st.dictionaries(st.text(max_size=8), json_values, max_size=3),
    },
)


@settings(max_examples=300)
@given(envelopes(unknown_types, json_values), st.booleans())
def test_valid_envelopes_round_trip_unchanged(envelope: Envelope, ce_headers: bool) -> None:
    body = encode(envelope, registry=LENIENT)
    decoded = decode(body, to_properties(envelope, ce_headers=ce_headers), registry=LENIENT)
    assert decoded == envelope
    assert encode(decoded) == body  # byte for byte: no 1 -> 1.0 or true -> 1 drift


@settings(max_examples=150)
@given(envelopes(st.just("log.record"), log_records))
def test_valid_log_records_round_trip_through_the_strict_registry(envelope: Envelope) -> None:
    body = encode(envelope, registry=STRICT)
    assert decode(body, None, registry=STRICT) == envelope


@given(st.binary(max_size=200), st.none() | st.sampled_from(["log.record", "made.up"]))
def test_no_bytes_make_the_policy_raise(raw: bytes, event_type: str | None) -> None:
    outcome = decode_or_reject(raw, None, registry=STRICT, event_type=event_type)
    assert isinstance(outcome, Envelope | Rejection)


@given(
    st.dictionaries(st.text(max_size=12), json_values, max_size=6),
    st.builds(Properties, type=st.none() | st.text(max_size=10), message_id=st.none() | st.text(max_size=10)),
    st.booleans(),
)
def test_no_json_object_makes_the_policy_raise(
    document: dict[str, Any], props: Properties, as_ce: bool
) -> None:
    if as_ce:
        document = {"specversion": "1.0", **document}
    outcome = decode_or_reject(json.dumps(document).encode(), props, registry=STRICT)
    assert isinstance(outcome, Envelope | Rejection)
    if isinstance(outcome, Rejection):
        assert outcome.reason
