"""What the RabbitMQ transport takes of pika: the versions it was written for, the bytes it
encodes in pika's place (declare and bind arguments, content headers), and no patch of pika:
a plain pika client in the same process still behaves like stock pika."""

from __future__ import annotations

import math
import re
import tomllib
import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any

import pika
import pika.data
import pytest
from broker_under_test import plain_amqp_url
from hypothesis import given, settings
from hypothesis import strategies as st
from pika import spec

import routing
from routing import _amqp
from routing._frozen import thaw
from routing.properties import Properties, encode_properties
from routing.topology import Queue, Topology
from routing.transport.rabbitmq import RabbitTransport, _encode, _pika
from routing.transport.rabbitmq._decode import decode_properties

names = st.text(max_size=20)
# What pika's own table encoder takes: the bytes must then be pika's.
tables = st.dictionaries(
    st.text(max_size=8), st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8) | st.booleans(), max_size=4
)


def _pikas(method: Any) -> bytes:
    return b"".join(method.encode())


def test_the_version_check_names_the_supported_range() -> None:
    with pytest.warns(RuntimeWarning, match=re.escape(f"pika {_pika.SUPPORTED}, not pika 1.5.0")):
        _pika.check_version("1.5.0")
    with pytest.warns(RuntimeWarning, match="not pika 1.2.1"):
        _pika.check_version("1.2.1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _pika.check_version(pika.__version__)  # the installed one is in range


def test_pyproject_bounds_pika_to_the_supported_range() -> None:
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert f"pika{_pika.SUPPORTED}" in project["project"]["dependencies"]


@settings(max_examples=150, deadline=None)
@given(name=names, kind=names, flags=st.lists(st.booleans(), min_size=4, max_size=4), arguments=tables)
def test_exchange_declare_is_pikas_bytes(
    name: str, kind: str, flags: list[bool], arguments: dict[str, Any]
) -> None:
    passive, durable, auto_delete, internal = flags
    ours = _encode.exchange_declare(
        name,
        kind,
        passive=passive,
        durable=durable,
        auto_delete=auto_delete,
        internal=internal,
        arguments=arguments,
    )
    theirs = spec.Exchange.Declare(0, name, kind, passive, durable, auto_delete, internal, False, arguments)
    assert ours == _pikas(theirs)


@settings(max_examples=150, deadline=None)
@given(name=names, flags=st.lists(st.booleans(), min_size=4, max_size=4), arguments=tables)
def test_queue_declare_is_pikas_bytes(name: str, flags: list[bool], arguments: dict[str, Any]) -> None:
    passive, durable, exclusive, auto_delete = flags
    ours = _encode.queue_declare(
        name,
        passive=passive,
        durable=durable,
        exclusive=exclusive,
        auto_delete=auto_delete,
        arguments=arguments,
    )
    theirs = spec.Queue.Declare(0, name, passive, durable, exclusive, auto_delete, False, arguments)
    assert ours == _pikas(theirs)


@settings(max_examples=150, deadline=None)
@given(destination=names, source=names, key=names, arguments=tables)
def test_bind_and_unbind_are_pikas_bytes(
    destination: str, source: str, key: str, arguments: dict[str, Any]
) -> None:
    ours = _encode.bind(destination, source, key, arguments)
    assert ours == _pikas(spec.Queue.Bind(0, destination, source, key, False, arguments))
    assert ours == _pikas(spec.Exchange.Bind(0, destination, source, key, False, arguments))
    assert ours == _pikas(spec.Exchange.Unbind(0, destination, source, key, False, arguments))
    no_wait_octet = _encode.bind(destination, source, key, arguments, nowait_octet=False)
    assert no_wait_octet == _pikas(spec.Queue.Unbind(0, destination, source, key, arguments))


def test_arguments_pika_cannot_encode_go_through_our_codec() -> None:
    arguments = {"f": 1.5, "d": Decimal("30000000.00")}
    encoded = _encode.queue_declare("q", arguments=arguments)
    decoded, end = _amqp.decode_table(encoded, 2 + 2 + 1)  # after the ticket, "q" and the flags
    assert decoded == arguments and type(decoded["f"]) is float and end == len(encoded)
    with pytest.raises(pika.exceptions.UnsupportedAMQPFieldException):
        _pikas(spec.Queue.Declare(0, "q", arguments={"f": 1.5}))  # stock pika, unpatched


shortstrs = st.none() | st.text(max_size=10)
properties = st.builds(
    Properties,
    content_type=shortstrs,
    content_encoding=shortstrs,
    headers=tables,
    delivery_mode=st.none() | st.sampled_from([1, 2]),
    priority=st.none() | st.integers(0, 255),
    correlation_id=shortstrs,
    reply_to=shortstrs,
    expiration=st.none() | st.integers(0, 10**9).map(str),
    message_id=shortstrs,
    timestamp=st.none() | st.integers(0, 2**64 - 1),
    type=shortstrs,
    user_id=shortstrs,
    app_id=shortstrs,
)


@settings(max_examples=300, deadline=None)
@given(properties)
def test_content_headers_decode_to_what_was_sent_and_as_pika_reads_them(p: Properties) -> None:
    encoded = encode_properties(p)
    ours = decode_properties(encoded)
    assert ours == p
    theirs = spec.BasicProperties()
    theirs.decode(encoded)
    for name in ("content_type", "delivery_mode", "priority", "expiration", "timestamp", "app_id", "type"):
        assert getattr(ours, name) == getattr(theirs, name)
    assert thaw(ours.headers) == (theirs.headers or {})


@pytest.mark.broker
def test_pika_stays_stock_beside_a_routing_transport(amqp_url: str, unique: str) -> None:
    headers = {"f": 1.5, "d": Decimal("30000000.00")}
    with RabbitTransport(amqp_url) as rabbit:
        rabbit.declare(Topology.of(Queue(unique, expires=60_000)))
        for _ in range(2):
            rabbit.publish("", unique, b"x", Properties(headers=headers))
        assert rabbit.flush(timeout=10) == []
        # pika's own table functions, as pika defines them (the transport once replaced them)
        assert pika.data.encode_value.__module__ == "pika.data"
        assert pika.data.decode_value.__module__ == "pika.data"
        with pytest.raises(pika.exceptions.UnsupportedAMQPFieldException):
            pika.data.encode_value([], 1.5)
        delivered = rabbit.get(unique)
        assert delivered is not None
        assert thaw(delivered.headers) == headers and type(delivered.headers["f"]) is float
        rabbit.ack(delivered)
        # A plain pika client in the same process: stock pika's reading (floats with int(),
        # decimals as signed), not routing's.
        plain = pika.BlockingConnection(pika.URLParameters(plain_amqp_url(amqp_url)))
        try:
            method, props, _body = plain.channel().basic_get(unique, auto_ack=True)
            assert method is not None
            assert type(props) is spec.BasicProperties
            assert props.headers["f"] == 1 and not isinstance(props.headers["f"], float)
            assert props.headers["d"] != headers["d"]
            assert not math.isclose(float(props.headers["d"]), 30000000.0)
        finally:
            plain.close()
        rabbit.delete_queue(unique)


_ROOT = Path(routing.__file__).parent
_PRIVATE = re.compile(
    r"\._impl\b|_flush_output|\._sock\b|_body_max_length|\._rpc\b|_frame_buffer|_read_frame"
    r"|_send_connection_start_ok|_impl_class|_on_consumer_cancelled_by_broker"
)


def _modules(pattern: re.Pattern[str]) -> set[str]:
    return {p.relative_to(_ROOT).as_posix() for p in _ROOT.rglob("*.py") if pattern.search(p.read_text())}


def test_pikas_private_attributes_are_used_in_one_module() -> None:
    # One module, in two files for size: `_pika` and its writing half, which it re-exports.
    assert _modules(_PRIVATE) == {"transport/rabbitmq/_pika.py", "transport/rabbitmq/_pika_write.py"}


def test_the_transport_and_its_consumers_leave_pikas_exceptions_to_the_connection() -> None:
    # The one translation is `_connect.translate`, which both connections (`Connection.errors`,
    # `AsyncConnection.errors`) raise; connecting has its own (`ConnectionFailed`).
    assert _modules(re.compile(r"pika\.exceptions|\bpx\.")) == {
        "transport/rabbitmq/_aio_connection.py",
        "transport/rabbitmq/_connection.py",
        "transport/rabbitmq/_connect.py",
        "transport/rabbitmq/_pika.py",
    }
    lost = {m for m in _modules(re.compile(r"ConnectionLost\(")) if m.startswith("transport/rabbitmq/")}
    # The transports' one is close()'s "transport closed before the confirm"; the confirm
    # tracker's (pika-free) settles what was in flight when the connection went; `_connect`'s
    # is the translation of a dropped connection.
    assert lost == {
        "transport/rabbitmq/_aio_connection.py",
        "transport/rabbitmq/_aio_transport.py",
        "transport/rabbitmq/_confirms.py",
        "transport/rabbitmq/_connect.py",
        "transport/rabbitmq/_connection.py",
        "transport/rabbitmq/_transport.py",
    }


@pytest.mark.parametrize(
    "payload",
    [
        b"\x00\x3c\x00\x00",  # basic, but cut inside the weight and body size
        b"\x00\x3c\x00\x00" + b"\x00" * 8,  # no property flags
        b"\x00\x3c\x00\x00" + b"\x00" * 8 + b"\x20\x00" + b"\x00\x00\x00\x04\x01zX\x00",  # headers: type 'X'
    ],
)
def test_a_malformed_content_header_is_a_frame_error(payload: bytes) -> None:
    # Only a hostile or broken peer sends these; the connection must see our FrameError (it
    # ends the connection), never a struct.error from our decoder.
    import struct

    from routing.transport.rabbitmq._frames import FrameError, Frames
    from routing.transport.rabbitmq._pika_frames import decode_frame

    data = struct.pack(">BHI", 2, 1, len(payload)) + payload + b"\xce"
    with pytest.raises(FrameError, match="malformed content header"):
        decode_frame(data)  # a content pika assembles (basic.get-ok)
    # The same header after a basic.deliver: our decoder's, the same error.
    deliver = b"\x00\x3c\x00\x3c\x01t" + b"\x00" * 8 + b"\x00\x00\x00"
    with pytest.raises(FrameError):
        Frames().feed(struct.pack(">BHI", 1, 1, len(deliver)) + deliver + b"\xce" + data)


def test_both_connection_classes_read_and_write_through_one_codec() -> None:
    # The blocking transport's select connection and the asyncio transport's connection take
    # content headers and client properties from the same two methods, not copies.
    from routing.transport.rabbitmq import _pika

    for name in ("_on_data_available", "_send_connection_start_ok"):
        mine = getattr(_pika._Codec, name)
        assert getattr(_pika._SelectConnection, name) is mine
        assert getattr(_pika._AsyncioConnection, name) is mine
