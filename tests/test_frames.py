"""The frame decoder (`_frames`) held to pika's own decoding (`pika.frame.decode_frame` and its
content assembler) on generated frame streams, read in any pieces, and to the AMQP 0-9-1 spec
where pika does not check (section 4.2.3: frame end, frame_max, heartbeats on channel 0,
content frames in order, body size); and the acks we encode held to pika's bytes."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pika import frame, spec
from pika.channel import ContentFrameAssembler
from test_rabbitmq_pika import properties

from routing.properties import Properties, encode_properties
from routing.transport.rabbitmq._encode import ACK, NACK, REJECT, settle_frame
from routing.transport.rabbitmq._frames import FrameError, Frames


def raw(kind: int, channel: int, payload: bytes) -> bytes:
    return struct.pack(">BHI", kind, channel, len(payload)) + payload + b"\xce"


def method(channel: int, m: Any) -> bytes:
    return frame.Method(channel, m).marshal()  # type: ignore[no-any-return]


def content(channel: int, m: Any, p: Properties, body: bytes, body_max: int) -> bytes:
    """A content method, its header (our properties codec) and the body in `body_max` pieces."""
    out = method(channel, m) + raw(2, channel, struct.pack(">HHQ", 60, 0, len(body)) + encode_properties(p))
    for start in range(0, len(body), body_max):
        out += raw(3, channel, body[start : start + body_max])
    return out


shortstrs = st.text(max_size=12)
channels = st.integers(1, 65535)
tags = st.integers(0, 2**64 - 1)
bodies = st.binary(max_size=300)
body_maxes = st.integers(1, 120)
# Each draws (frames' bytes, what pika reads of them): deliveries, returns and confirms as items,
# anything else as the frame itself.
deliveries = st.builds(
    lambda ch, ctag, tag, redelivered, ex, key, p, body, bm: (
        content(ch, spec.Basic.Deliver(ctag, tag, redelivered, ex, key), p, body, bm),
        ("deliver", ch, ctag, tag, redelivered, ex, key, p, body),
    ),
    channels,
    shortstrs,
    tags,
    st.booleans(),
    shortstrs,
    shortstrs,
    properties,
    bodies,
    body_maxes,
)
returns = st.builds(
    lambda ch, code, text, ex, key, p, body, bm: (
        content(ch, spec.Basic.Return(code, text, ex, key), p, body, bm),
        ("return", ch, code, text, ex, key, p, body),
    ),
    channels,
    st.integers(0, 65535),
    shortstrs,
    shortstrs,
    shortstrs,
    properties,
    bodies,
    body_maxes,
)
confirms = st.builds(
    lambda ch, tag, multiple, ack: (
        method(ch, spec.Basic.Ack(tag, multiple) if ack else spec.Basic.Nack(tag, multiple)),
        ("ack" if ack else "nack", ch, tag, multiple),
    ),
    channels,
    tags,
    st.booleans(),
    st.booleans(),
)
others = st.one_of(
    st.just(frame.Heartbeat().marshal()),
    st.builds(lambda ch, ctag: method(ch, spec.Basic.ConsumeOk(ctag)), channels, shortstrs),
    st.builds(lambda ch: method(ch, spec.Basic.QosOk()), channels),
    st.builds(lambda ch: method(ch, spec.Channel.CloseOk()), channels),
    st.builds(
        lambda ch, ctag, p, body, bm: content(ch, spec.Basic.GetOk(7, False, ctag, "q", 3), p, body, bm),
        channels,
        shortstrs,
        properties,
        bodies,
        body_maxes,
    ),
).map(lambda data: (data, None))
streams = st.lists(st.one_of(deliveries, returns, confirms, others), max_size=8)


def pikas(data: bytes) -> list[Any]:
    """What pika reads of `data`: its frames, assembled as its channels do."""
    out: list[Any] = []
    assemblers: dict[int, ContentFrameAssembler] = {}
    while data:
        consumed, value = frame.decode_frame(data)
        whole, data = data[:consumed], data[consumed:]
        ch = value.channel_number
        if isinstance(value, frame.Method) and isinstance(value.method, spec.Basic.Ack | spec.Basic.Nack):
            m = value.method
            out.append(("ack" if isinstance(m, spec.Basic.Ack) else "nack", ch, m.delivery_tag, m.multiple))
        elif isinstance(value, frame.Method) and isinstance(
            value.method, spec.Basic.Deliver | spec.Basic.Return
        ):
            assemblers[ch] = ContentFrameAssembler()
            assemblers[ch].process(value)
        elif ch in assemblers:
            done = assemblers[ch].process(value)
            if done:
                del assemblers[ch]
                m, body = done[0].method, done[2]
                if isinstance(m, spec.Basic.Deliver):
                    out.append(
                        (
                            "deliver",
                            ch,
                            m.consumer_tag,
                            m.delivery_tag,
                            m.redelivered,
                            m.exchange,
                            m.routing_key,
                            body,
                        )
                    )
                else:
                    out.append(("return", ch, m.reply_code, m.reply_text, m.exchange, m.routing_key, body))
        else:
            out.append(("frame", ch, whole))
    assert not assemblers
    return out


def ours(items: list[tuple[Any, ...]]) -> list[Any]:
    """Our items without the properties (pika reads those its own way: compared apart)."""
    return [item[:-2] + item[-1:] if item[0] in ("deliver", "return") else item for item in items]


def read(data: bytes, cuts: list[int], frame_max: int = 0) -> list[tuple[Any, ...]]:
    frames, items, last = Frames(frame_max), [], 0
    for cut in [*sorted(cuts), len(data)]:
        items += frames.feed(data[last:cut])
        last = cut
    return items


@settings(max_examples=300, deadline=None)
@given(streams, st.data())
def test_frames_read_as_pika_reads_them_in_any_pieces(stream: list[Any], data: st.DataObject) -> None:
    wire = b"".join(frames for frames, _item in stream)
    cuts = data.draw(st.lists(st.integers(0, len(wire)), max_size=12))
    items = read(wire, cuts)
    assert ours(items) == pikas(wire)
    # The properties are what was sent (pika's own reading of them is wrong for some: floats, decimals).
    sent = [item[-2] for _frames, item in stream if item is not None and item[0] in ("deliver", "return")]
    assert [item[-2] for item in items if item[0] in ("deliver", "return")] == sent


P = Properties(content_type="application/json", message_id="m-1", headers={"a": 1}, delivery_mode=2)
WIRE = (
    content(1, spec.Basic.Deliver("c", 1, False, "ex", "k"), P, b"x" * 50, 20)  # three body frames
    + frame.Heartbeat().marshal()
    + content(2, spec.Basic.Deliver("d", 7, True, "", "q"), P, b"", 20)  # no body frame at all
    + method(5, spec.Basic.Ack(9, True))
)
EXPECTED = [
    ("deliver", 1, "c", 1, False, "ex", "k", P, b"x" * 50),
    ("frame", 0, frame.Heartbeat().marshal()),
    ("deliver", 2, "d", 7, True, "", "q", P, b""),
    ("ack", 5, 9, True),
]


def test_a_stream_cut_at_every_byte_boundary_reads_the_same() -> None:
    for cut in range(len(WIRE) + 1):
        assert read(WIRE, [cut]) == EXPECTED, cut
    assert read(WIRE, list(range(len(WIRE)))) == EXPECTED  # a byte at a time


def test_frame_max_is_the_limit_on_a_whole_frame() -> None:
    body = raw(3, 1, b"x" * 100)  # 108 bytes with the frame overhead
    deliver = method(1, spec.Basic.Deliver("c", 1, False, "", "k"))
    header = raw(2, 1, struct.pack(">HHQ", 60, 0, 100) + encode_properties(Properties()))
    assert read(deliver + header + body, [], frame_max=108)[0][-1] == b"x" * 100
    with pytest.raises(FrameError, match="over frame_max 107") as refused:
        read(deliver + header + body, [], frame_max=107)
    assert refused.value.code == 501
    with pytest.raises(FrameError, match="over frame_max"):  # known from the frame's first 8 bytes
        Frames(107).feed(body[:8])
    # A content header past frame_max is read: RabbitMQ sends them when dead-lettering adds
    # `x-death` to headers already near the limit.
    big = Properties(headers={"h": "x" * 200})
    header = raw(2, 1, struct.pack(">HHQ", 60, 0, 0) + encode_properties(big))
    assert read(deliver + header, [], frame_max=108)[0][-2:] == (big, b"")


ACK_1 = method(1, spec.Basic.Ack(1, False))
DELIVER_1 = method(1, spec.Basic.Deliver("c", 1, False, "", "k"))
HEADER_1 = raw(2, 1, struct.pack(">HHQ", 60, 0, 3) + encode_properties(Properties()))


@pytest.mark.parametrize(
    ("data", "code", "problem"),
    [
        (ACK_1[:-1] + b"\x00", 501, "frame end octet"),
        (raw(9, 1, b""), 501, "frame type 9"),
        (raw(8, 1, b""), 501, "a heartbeat on channel 1"),
        (raw(3, 1, b"abc"), 505, "a body frame with no content"),
        (HEADER_1, 505, "a content header with no content method"),
        (DELIVER_1 + raw(3, 1, b"abc"), 505, "before the content header"),
        (DELIVER_1 + ACK_1, 505, "a method frame inside a content"),
        (DELIVER_1 + HEADER_1 + raw(3, 1, b"abcd"), 501, "4 body bytes on channel 1, not 3"),
        (DELIVER_1 + HEADER_1 + HEADER_1, 505, "a second content header"),
        (DELIVER_1 + raw(2, 1, struct.pack(">HHQ", 50, 0, 3) + b"\x00\x00"), 501, "of class 50"),
        (DELIVER_1 + raw(2, 1, HEADER_1[7:-1] + b"\x00"), 501, "do not fill exactly"),  # a byte too many
        (
            DELIVER_1 + raw(2, 1, struct.pack(">HHQ", 60, 0, 3) + b"\x80\x00\x09ab"),
            501,
            "do not fill exactly",
        ),
        (raw(1, 1, struct.pack(">HH", 60, 80) + b"\x00"), 501, "cut short"),
        (raw(1, 1, struct.pack(">HHB", 60, 60, 200) + b"c"), 501, "longer than its frame|malformed"),
    ],
)
def test_bytes_no_broker_may_send_are_a_frame_error(data: bytes, code: int, problem: str) -> None:
    with pytest.raises(FrameError, match=problem) as refused:
        Frames().feed(data)
    assert refused.value.code == code


def test_a_refused_protocol_version_goes_to_pika_as_it_came() -> None:
    assert Frames().feed(b"AMQP\x00\x00\x09\x01") == [("frame", 0, b"AMQP\x00\x00\x09\x01")]


@given(st.integers(1, 65535), tags, st.booleans(), st.booleans())
def test_acks_nacks_and_rejects_are_pikas_bytes(
    channel: int, tag: int, multiple: bool, requeue: bool
) -> None:
    assert settle_frame(channel, ACK, tag, multiple) == method(channel, spec.Basic.Ack(tag, multiple))
    nack = spec.Basic.Nack(tag, multiple, requeue)
    assert settle_frame(channel, NACK, tag, multiple | requeue << 1) == method(channel, nack)
    assert settle_frame(channel, REJECT, tag, requeue) == method(channel, spec.Basic.Reject(tag, requeue))
