"""Our basic.publish frames are byte for byte what pika marshals, for any properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pika import BasicProperties, frame, spec

from routing._frozen import thaw
from routing.errors import RoutingError
from routing.transport.base import Properties
from routing.transport.rabbitmq._encode import encode_properties, publish_frames

BODY_MAX = 4096 - 8
shortstr = st.text(max_size=40)
header_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
properties = st.builds(
    Properties,
    content_type=st.none() | shortstr,
    content_encoding=st.none() | shortstr,
    headers=st.dictionaries(st.text(min_size=1, max_size=10), header_values, max_size=4),
    delivery_mode=st.none() | st.sampled_from([1, 2]),
    priority=st.none() | st.integers(0, 9),
    correlation_id=st.none() | shortstr,
    reply_to=st.none() | shortstr,
    expiration=st.none() | st.integers(0, 10**9).map(str),
    message_id=st.none() | shortstr,
    timestamp=st.none() | st.integers(0, 2**40),
    type=st.none() | shortstr,
    user_id=st.none() | shortstr,
    app_id=st.none() | shortstr,
)


def to_pika(p: Properties) -> BasicProperties:
    """The reference: pika's own properties object for `p` (what the transport once sent)."""
    values = {name: getattr(p, name) for name in Properties.__dataclass_fields__}
    values["headers"] = thaw(p.headers) if p.headers else None
    return BasicProperties(**values)


def _pika_frames(channel: int, exchange: str, key: str, mandatory: bool, p: Properties, body: bytes) -> bytes:
    method = spec.Basic.Publish(exchange=exchange, routing_key=key, mandatory=mandatory)
    out = [frame.Method(channel, method).marshal(), frame.Header(channel, len(body), to_pika(p)).marshal()]
    out += [frame.Body(channel, body[i : i + BODY_MAX]).marshal() for i in range(0, len(body), BODY_MAX)]
    return b"".join(out)


@settings(max_examples=300, deadline=None)
@given(
    p=properties,
    channel=st.integers(1, 2047),
    exchange=shortstr,
    key=shortstr,
    mandatory=st.booleans(),
    body=st.binary(max_size=9000),
)
def test_frames_equal_pikas(
    p: Properties, channel: int, exchange: str, key: str, mandatory: bool, body: bytes
) -> None:
    # frame_max 4096 (AMQP's least): bodies up to three frames and the content header in one.
    ours = publish_frames(channel, exchange, key, mandatory, encode_properties(p), body, BODY_MAX)
    assert ours == _pika_frames(channel, exchange, key, mandatory, p, body)


def test_no_properties() -> None:
    assert publish_frames(1, "", "q", False, encode_properties(None), b"", BODY_MAX) == _pika_frames(
        1, "", "q", False, Properties(), b""
    )


def test_a_long_property_is_refused_before_sending() -> None:
    with pytest.raises(RoutingError, match="message_id is 256 bytes; AMQP allows 255"):
        encode_properties(Properties(message_id="x" * 256))
