"""What a message may carry: our field-table codec against itself, against the content-header
decoder deliveries go through and against pika's own encoder, and every value AMQP cannot carry
(or RabbitMQ refuses) raising `PropertyError` by name."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pika.data
import pika.spec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing import _amqp
from routing._frozen import thaw
from routing.errors import PropertyError, RoutingError
from routing.properties import FRAME_MAX, Properties, check_message, encode_properties
from routing.transport.rabbitmq._decode import decode_properties

# Every value the codec takes, with the decoded value it must come back as.
_decimals = st.builds(
    lambda digits, places: Decimal(digits).scaleb(-places), st.integers(0, 2**32 - 1), st.integers(0, 255)
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.binary(max_size=12),
    _decimals,
    st.datetimes(min_value=datetime(1970, 1, 1), timezones=st.just(UTC)).map(
        lambda d: d.replace(microsecond=0)
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
tables = st.dictionaries(st.text(max_size=12), values, max_size=5)


def _same(decoded: Any, sent: Any) -> bool:
    """Equal, and of the same kind (1.0 is not 1, True is not 1, a list stays a list)."""
    if isinstance(sent, dict):
        return (
            isinstance(decoded, dict)
            and decoded.keys() == sent.keys()
            and all(_same(decoded[k], v) for k, v in sent.items())
        )
    if isinstance(sent, list | tuple):
        return isinstance(decoded, list) and len(decoded) == len(sent) and all(map(_same, decoded, sent))
    if isinstance(sent, float) and math.copysign(1, sent) != math.copysign(1, decoded):
        return False
    return type(decoded) is type(sent) and decoded == sent


@settings(max_examples=400, deadline=None)
@given(tables)
def test_every_valid_table_decodes_to_itself_as_a_table_and_in_a_delivery(table: dict[str, Any]) -> None:
    encoded = _amqp.encode_table(table)
    ours, end = _amqp.decode_table(encoded, 0)
    assert end == len(encoded)
    assert _same(ours, table)
    # A content header with only the headers flag (bit 13), as the connection decodes deliveries.
    delivered = decode_properties(b"\x20\x00" + encoded).headers
    assert _same(thaw(delivered), table)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=8), st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8) | st.booleans()
    )
)
def test_tables_pika_could_encode_are_byte_for_byte_pikas(table: dict[str, Any]) -> None:
    pieces: list[bytes] = []
    pika.data.encode_table(pieces, table)  # stock pika: nothing of it is patched
    assert _amqp.encode_table(table) == b"".join(pieces)


# A value that cannot go, inside a table nested like this, names its whole path.
bad_values = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, 2**63, -(2**63) - 1, 10**30, "\ud800", bytearray(b"x")]),
    st.sampled_from([Decimal("-1.5"), Decimal("NaN"), Decimal("Infinity"), Decimal("1E+10"), Decimal(2**32)]),
    st.sampled_from([object(), {1, 2}, datetime(1969, 12, 31, tzinfo=UTC)]),
)


@settings(max_examples=200, deadline=None)
@given(bad=bad_values, outer=st.text("abc", min_size=1, max_size=3), at=st.integers(0, 2))
def test_invalid_values_raise_property_error_naming_the_path(bad: Any, outer: str, at: int) -> None:
    items: list[Any] = [1, "x"]
    items.insert(at, {"inner": bad})
    with pytest.raises(PropertyError) as caught:
        encode_properties(Properties(headers={"ok": 1, outer: items}))
    assert caught.value.field == f"headers.{outer}[{at}].inner"
    str(caught.value).encode()  # printable: a lone surrogate is shown escaped


@pytest.mark.parametrize(
    ("properties", "field", "says"),
    [
        (Properties(priority=256), "priority", "from 0 to 255"),
        (Properties(priority=-1), "priority", "from 0 to 255"),
        (Properties(priority=True), "priority", "got bool"),
        (Properties(timestamp=-1), "timestamp", "0 or more"),
        (Properties(timestamp=2**64), "timestamp", "0 or more"),
        (Properties(message_id=5), "message_id", "must be a string, got int"),  # type: ignore[arg-type]
        (Properties(message_id="\ud800"), "message_id", "not valid UTF-8"),
        (Properties(app_id="x" * 256), "app_id", "256 bytes; AMQP allows 255"),
        (Properties(delivery_mode=3), "delivery_mode", "1 (transient) or 2 (persistent)"),
        (Properties(delivery_mode=0), "delivery_mode", "1 (transient) or 2 (persistent)"),
        (Properties(expiration="abc"), "expiration", "not a number of milliseconds"),
        (Properties(expiration="-5"), "expiration", "not a number of milliseconds"),
        (Properties(expiration="1.5"), "expiration", "not a number of milliseconds"),
        (Properties(expiration=" 5"), "expiration", "not a number of milliseconds"),
        (Properties(expiration=str(2**64)), "expiration", "not a number of milliseconds"),
        (Properties(expiration=5), "expiration", "must be a string"),  # type: ignore[arg-type]
        (Properties(headers={"d": Decimal("1E+10")}), "headers.d", "does not fit an AMQP decimal"),
        (Properties(headers={"d": Decimal("-1.5")}), "headers.d", "AMQP decimals are unsigned"),
        (Properties(headers={"d": Decimal("NaN")}), "headers.d", "finite"),
        (Properties(headers={"k" * 256: 1}), "headers['kkkk", "name of 256 bytes; AMQP allows 255"),
        (Properties(headers={"\ud800": 1}), "headers['\\ud800']", "not valid UTF-8"),
        (Properties(headers={"n": math.nan}), "headers.n", "RabbitMQ closes the connection"),
        (Properties(headers={"n": [1, [math.inf]]}), "headers.n[1][0]", "RabbitMQ closes the connection"),
        (Properties(headers={"big": 2**63}), "headers.big", "signed 64-bit"),
        (Properties(headers={"big": 99999999999999999999}), "headers.big", "signed 64-bit"),
    ],
)
def test_each_bad_property_is_named(properties: Properties, field: str, says: str) -> None:
    with pytest.raises(PropertyError) as caught:
        check_message("", "q", properties)
    error = caught.value
    assert isinstance(error, RoutingError) and isinstance(error, ValueError)
    assert error.field.startswith(field), error.field
    assert says in str(error)


def test_rabbitmqs_edges_are_taken() -> None:
    # The largest of each that RabbitMQ 3.10.8 and 4.0.5 accept (checked live).
    check_message(
        "x" * 255,
        "k" * 255,
        Properties(
            priority=255,
            timestamp=2**64 - 1,
            expiration=str(_amqp.MAX_EXPIRY_MS),
            headers={"k" * 255: [2**63 - 1, -(2**63), Decimal(2**32 - 1).scaleb(-255)]},
        ),
    )
    check_message("", "", Properties(expiration="+5"))
    check_message("", "", Properties(expiration="05"))


@pytest.mark.parametrize(
    ("exchange", "key", "field"),
    [("", "a\udcff", "routing_key"), ("\ud800", "k", "exchange"), ("", "k" * 256, "routing_key")],
)
def test_routing_keys_and_exchange_names_are_checked(exchange: str, key: str, field: str) -> None:
    with pytest.raises(PropertyError) as caught:
        check_message(exchange, key, None)
    assert caught.value.field == field


def test_a_header_table_larger_than_a_frame_is_refused_by_name() -> None:
    properties = Properties(headers={"blob": "x" * FRAME_MAX})
    with pytest.raises(PropertyError, match="frame_max is 131072") as caught:
        check_message("", "q", properties)
    assert caught.value.field == "headers"
    check_message("", "q", Properties(headers={"blob": "x" * (FRAME_MAX - 100)}))


# ------------------------------------------------------------------- decimals


@pytest.mark.parametrize(
    ("value", "scale", "digits"),
    [
        (Decimal("1.5"), 1, 15),
        (Decimal("1.50"), 2, 150),  # kept as written: RabbitMQ compares scale and digits
        (Decimal("4294967.295"), 3, 4294967295),
        (Decimal("30000000.00"), 2, 3000000000),
        (Decimal("1E+3"), 0, 1000),
        (Decimal("-0"), 0, 0),
        (Decimal("1.00000000000000000000"), 9, 10**9),  # too many digits as written: the same number, shorter
    ],
)
def test_decimals_are_an_unsigned_scale_and_value(value: Decimal, scale: int, digits: int) -> None:
    encoded = _amqp.encode_value(value)
    assert encoded == b"D" + bytes((scale,)) + digits.to_bytes(4, "big")
    decoded, _ = _amqp.decode_value(encoded, 0)
    assert decoded == value


def test_decimals_with_the_top_bit_set_are_read_unsigned() -> None:
    # amqplib's {places: 2, digits: 3000000000} (the issue: pika read -12949672.96).
    encoded = b"D\x02" + (3_000_000_000).to_bytes(4, "big")
    assert _amqp.decode_value(encoded, 0)[0] == Decimal("30000000.00")
    entry = b"\x01d" + encoded  # in a delivery's headers, as the connection decodes them
    header = b"\x20\x00" + len(entry).to_bytes(4, "big") + entry
    assert decode_properties(header).headers["d"] == Decimal("30000000.00")


def test_a_timestamp_beyond_year_9999_decodes_as_seconds_not_an_error() -> None:
    seconds = 253402300800 + 1  # 10000-01-01T00:00:01Z
    value, end = _amqp.decode_value(b"T" + seconds.to_bytes(8, "big"), 0)
    assert value == seconds and end == 9


def test_properties_headers_are_frozen_at_construction() -> None:
    headers: dict[str, Any] = {"n": 1, "tags": ["a"]}
    p = Properties(headers=headers)
    headers["n"] = 2
    headers["tags"].append("b")
    assert thaw(p.headers) == {"n": 1, "tags": ["a"]}
    assert hash(p) == hash(Properties(headers={"n": 1, "tags": ["a"]}))


def test_what_was_delivered_can_be_sent_back() -> None:
    # Another client's non-UTF-8 header name arrives as bytes (as pika gives it); a worker
    # that dead-letters or replays the message must be able to send it again as it came.
    table = {b"\xff\xfe": 1, "s": b"\xff"}
    encoded = _amqp.encode_table(table)
    assert _amqp.decode_table(encoded, 0)[0] == table


def test_a_deliverys_properties_decode_with_our_values() -> None:
    # What a delivery's content header goes through: the connection's own decoder (pika's
    # BasicProperties.decode reads floats with int() and decimals as signed).
    headers = {"f": 1.5, "d": Decimal("30000000.00"), "far": datetime(9999, 12, 31, tzinfo=UTC)}
    encoded = encode_properties(Properties(headers=headers))
    far = b"T" + (253402300800 + 5).to_bytes(8, "big")  # beyond year 9999
    entry = b"\x03bad" + far  # appended to the table by hand: our encoder has no such value
    size = len(encoded) - 6 + len(entry)  # flags (2 bytes), then the table's length (4)
    encoded = encoded[:2] + size.to_bytes(4, "big") + encoded[6:] + entry
    decoded = decode_properties(encoded)
    assert thaw(decoded.headers) == {**headers, "bad": 253402300805}
