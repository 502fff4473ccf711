"""Every use of pika's private attributes, in one place (this module and its writing half,
`_pika_write`, re-exported here), for the pika versions it was written for.

The transport drives pika's `BlockingConnection` closer than its public API reaches:

- its wait loop (`BlockingConnection._flush_output`, `BlockingChannel._flush_output`): unlike
  `process_data_events` it stops as soon as a condition holds;
- the asynchronous channel under a blocking one (`BlockingChannel._impl`) for pipelined
  confirms, consumers whose deliveries land in our buffers, and methods we encode (`rpc`);
- the socket under a plain connection (`_transport._sock`) and the body frame size
  (`_body_max_length`), to write a message's frames in one `send` (`FrameWriter`);
- a per-connection `SelectConnection` subclass (`_impl_class`) that reads the wire with our
  decoder (`_frames`: deliveries, confirms and returns go straight to our callbacks, other
  frames to pika's `_process_frame`, in large socket reads) and encodes client properties
  with our table codec (pika's cannot encode a float, reads floats with `int()` and decimals
  as signed). Nothing of pika is patched: another pika client in the process keeps pika's
  behaviour. The asyncio transport's `AsyncioConnection` subclass shares it (`_Codec`);
- that subclass also holds back what `write` is given while a batch is open (`hold`), and
  writes it out before any frame of pika's (`_output_marshaled_frames`) and before `pump` waits.

Importing this module checks the pika version (`SUPPORTED`): outside that range it warns, and
it refuses a pika that lacks what is used here.
"""

from __future__ import annotations

import struct
import warnings
from collections.abc import Callable
from typing import Any

import pika
from pika import spec
from pika.adapters import asyncio_connection, blocking_connection, select_connection
from pika.adapters.utils import io_services_utils
from pika.channel import Channel
from pika.connection import Connection

from routing._amqp import encode_table, shortstr
from routing.properties import Properties
from routing.transport.rabbitmq._frames import ACK, DELIVER, FRAME, NACK, FrameError, Frames
from routing.transport.rabbitmq._pika_frames import Prepared, Route, decode_frame, pika_frames

# The writing half, re-exported: callers use `_pika` (which checks the pika version first).
from routing.transport.rabbitmq._pika_write import BATCH_BYTES as BATCH_BYTES
from routing.transport.rabbitmq._pika_write import FrameWriter as FrameWriter
from routing.transport.rabbitmq._pika_write import _impl
from routing.transport.rabbitmq._pika_write import hold as hold
from routing.transport.rabbitmq._pika_write import settle as settle
from routing.transport.rabbitmq._pika_write import write as write
from routing.transport.rabbitmq._pika_write import write_out as write_out

SUPPORTED = ">=1.3,<1.5"  # written against 1.3.2 and 1.4.4; tested with 1.4.4
_RANGE = ((1, 3), (1, 5))

# (where, attribute) for each private attribute pika must have at class level.
_USED = (
    (blocking_connection.BlockingConnection, "_flush_output"),
    (blocking_connection.BlockingChannel, "_flush_output"),
    (blocking_connection.BlockingChannel, "_on_consumer_cancelled_by_broker"),
    (Connection, "_on_data_available"),
    (Connection, "_process_frame"),
    (Connection, "_output_marshaled_frames"),
    (Connection, "_terminate_stream"),
    (io_services_utils._AsyncPlaintextTransport, "_MAX_RECV_BYTES"),
    (io_services_utils._AsyncPlaintextTransport, "_MAX_CONSUME_BYTES"),
    (Connection, "_send_connection_start_ok"),
    (Connection, "_client_properties"),
    (Channel, "_rpc"),
    (io_services_utils, "_AsyncPlaintextTransport"),
    (blocking_connection.BlockingConnection, "_reap_last_connection_workflow_error"),
    (asyncio_connection, "AsyncioConnection"),
)


def check_version(version: str = pika.__version__) -> None:
    """Warn when `version` is outside `SUPPORTED`; `ImportError` when pika lacks what is used here."""
    try:
        major_minor = tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        major_minor = ()
    if not _RANGE[0] <= major_minor < _RANGE[1]:
        warnings.warn(
            f"routing's RabbitMQ transport was written for pika {SUPPORTED}, not pika {version}: "
            "it uses pika's private attributes (routing.transport.rabbitmq._pika)",
            RuntimeWarning,
            stacklevel=2,
        )
    missing = [
        f"{getattr(where, '__name__', where)}.{name}" for where, name in _USED if not hasattr(where, name)
    ]
    if missing:
        raise ImportError(
            f"pika {version} lacks {', '.join(missing)}, which routing's RabbitMQ transport uses; "
            f"install pika{SUPPORTED}"
        )


check_version()

# ----------------------------------------------------------------- connection

RECV_BYTES = 64 * 1024  # one socket read (pika's: 4,096); under malloc's mmap threshold
CONSUME_BYTES = 1024 * 1024  # read per readable event before the loop's other work (pika's: 100 KB)


class _Codec:
    """Our codec for a pika `Connection` subclass: reads through `_frames` (the deliveries,
    confirms and returns of a channel with a `Route` to its callbacks, other frames to pika),
    client properties through our table codec."""

    _client_properties: dict[str, Any]
    params: Any
    bytes_received: int
    _transport: Any
    _send_method: Callable[[int, Any], None]
    _process_frame: Callable[[Any], None]
    _terminate_stream: Callable[[BaseException | None], None]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._wire = Frames()
        self._wire_broken = False
        self._routes: dict[int, Route] = {}
        self._held: bytearray | None = None  # what `write` holds back in a batch (`hold`)
        super().__init__(*args, **kwargs)

    def _output_marshaled_frames(self, marshaled_frames: Any) -> None:
        """pika's frames go after what a batch holds back, so the byte order on the wire is kept."""
        if self._held:
            write_out(self)
        super()._output_marshaled_frames(marshaled_frames)  # type: ignore[misc]

    def _on_data_available(self, data_in: bytes) -> None:
        wire = self._wire
        if self._wire_broken:
            return
        if wire.frame_max == 0:  # the first read: read large chunks from now on
            transport = self._transport
            if transport is not None:
                transport._MAX_RECV_BYTES, transport._MAX_CONSUME_BYTES = RECV_BYTES, CONSUME_BYTES
        wire.frame_max = self.params.frame_max  # the negotiated one once tuned
        try:
            items = wire.feed(data_in)
        except FrameError as exc:
            self._broken(exc)
            return
        self.bytes_received += len(data_in)  # what pika's heartbeat checker watches
        routes = self._routes
        for item in items:
            kind = item[0]
            route = routes.get(item[1])
            if kind is FRAME:
                try:
                    value = decode_frame(item[2])[1]
                except Exception as exc:  # pika's decoder on bytes no broker sends (an unknown method...)
                    self._broken(exc)
                    return
                self._process_frame(value)
            elif route is None:
                self._to_pika(item)
            elif kind is DELIVER:
                if route.on_delivery is not None and item[2] == route.tag:
                    _k, _c, _t, tag, redelivered, exchange, key, props, body = item
                    route.on_delivery(exchange, key, tag, redelivered, props, body)
                else:
                    self._to_pika(item)
            elif kind is ACK:
                self._to_pika(item) if route.on_ack is None else route.on_ack(item[2], item[3])
            elif kind is NACK:
                self._to_pika(item) if route.on_nack is None else route.on_nack(item[2], item[3])
            else:
                self._to_pika(item) if route.on_return is None else route.on_return(*item[2:])

    def _broken(self, exc: Exception) -> None:
        """A malformed frame: the connection ends (pika's error, read as a lost connection)."""
        self._wire_broken = True
        self._terminate_stream(pika.exceptions.StreamLostError(f"the broker sent a malformed frame: {exc}"))

    def _to_pika(self, item: tuple[Any, ...]) -> None:
        """An item of a channel we do not route, as the frames pika would have read."""
        for value in pika_frames(item):
            self._process_frame(value)

    def _send_connection_start_ok(self, authentication_type: str, response: Any) -> None:
        response = response.encode() if isinstance(response, str) else bytes(response or b"")
        payload = (
            encode_table(self._client_properties, "client_properties")
            + shortstr("mechanism", authentication_type)
            + struct.pack(">I", len(response))
            + response
            + shortstr("locale", self.params.locale)
        )
        self._send_method(0, Prepared(spec.Connection.StartOk, payload))


class _SelectConnection(_Codec, select_connection.SelectConnection):  # type: ignore[misc]
    """pika's select connection (under `BlockingConnection`), with our codec."""


class _AsyncioConnection(_Codec, asyncio_connection.AsyncioConnection):  # type: ignore[misc]
    """pika's asyncio connection, with our codec."""


def open_connection(parameters: pika.ConnectionParameters) -> blocking_connection.BlockingConnection:
    return blocking_connection.BlockingConnection(parameters, _impl_class=_SelectConnection)


def open_asyncio(parameters: pika.ConnectionParameters, loop: Any, on_done: Callable[[Any], None]) -> Any:
    """Start connecting on `loop`; `on_done(connection or pika's workflow error)` once open
    (or not). Returns the workflow (`abort()` stops it)."""
    return _AsyncioConnection.create_connection([parameters], on_done, custom_ioloop=loop)


def workflow_error(exc: BaseException) -> BaseException:
    """The error of the last connection attempt in pika's connection-workflow error, as
    `BlockingConnection` raises it."""
    return blocking_connection.BlockingConnection._reap_last_connection_workflow_error(exc)  # type: ignore[no-any-return]


def server_properties(conn: Any) -> dict[str, Any]:
    """What the broker's `connection.start` announced (a blocking or an asyncio connection)."""
    return _impl(conn).server_properties  # type: ignore[no-any-return]


def pump(conn: Any, ready: Callable[[], bool], timeout: float | None) -> None:
    """Process I/O until `ready()` or `timeout` seconds; raises pika's error if the connection
    drops. (`_flush_output` is BlockingConnection's own wait loop: unlike
    `process_data_events` it stops as soon as `ready()`.) What a batch holds back is written
    first: nothing waits for an answer to frames not sent."""
    if conn._impl._held:
        write_out(conn._impl)
    if timeout is None:
        conn._flush_output(ready)
        return
    fired: list[bool] = []
    ioloop = conn._impl.ioloop
    handle = ioloop.call_later(max(timeout, 0), lambda: fired.append(True))
    try:
        conn._flush_output(lambda: bool(fired), ready)
    finally:
        ioloop.remove_timeout(handle)


def wake(conn: Any) -> None:
    """From another thread: end the current `pump` early (pika's one thread-safe call)."""
    conn._impl.ioloop.add_callback_threadsafe(_nothing)


def _nothing() -> None:
    """Run by the I/O loop after `wake`: waking it up was the point."""


# -------------------------------------------------------------------- channels


def on_close(channel: Any, callback: Callable[[Any, BaseException], None]) -> None:
    channel._impl.add_on_close_callback(callback)


def _route(channel: Any) -> Route:
    """The `Route` of a (blocking or asynchronous) channel, made on first use and forgotten
    when the channel closes (its number may be given to the next channel)."""
    impl = _impl(channel)
    routes: dict[int, Route] = impl.connection._routes
    number = impl.channel_number
    route = routes.get(number)
    if route is None:
        route = routes[number] = Route()
        impl.add_on_close_callback(lambda *_: routes.get(number) is route and routes.pop(number))
    return route


def confirm(
    channel: Any,
    on_ack: Callable[[int, bool], None],
    on_nack: Callable[[int, bool], None],
    on_return: Callable[[int, str, str, str, Properties, bytes], None],
    on_ready: Callable[[Any], None],
) -> None:
    """Confirm mode: `on_ack`/`on_nack(delivery_tag, multiple)`, `on_return(reply_code,
    reply_text, exchange, routing_key, properties, body)`."""
    impl = _impl(channel)
    route = _route(channel)
    route.on_ack, route.on_nack, route.on_return = on_ack, on_nack, on_return

    def confirmed(answer: Any) -> None:  # from pika, should a confirm pass the route by
        m = answer.method
        (on_ack if isinstance(m, spec.Basic.Ack) else on_nack)(m.delivery_tag, m.multiple)

    impl.add_on_return_callback(
        lambda _c, m, p, b: on_return(m.reply_code, m.reply_text, m.exchange, m.routing_key, p, b)
    )
    impl.confirm_delivery(confirmed, callback=on_ready)


def consume(
    channel: Any,
    queue: str,
    on_message: Callable[[str, str, int, bool, Properties, bytes], None],
    on_cancel: Callable[[Any], None],
    on_ready: Callable[[Any], None],
) -> None:
    """`basic.consume` with manual acks; each delivery to `on_message(exchange, routing_key,
    delivery_tag, redelivered, properties, body)`, a broker's cancel to `on_cancel`."""
    impl = _impl(channel)
    if impl is not channel:
        # BlockingChannel's own handler looks the tag up among the consumers it started; ours it
        # did not start, so it raised KeyError and pika closed the connection.
        impl.callbacks.remove(
            impl.channel_number, spec.Basic.Cancel, channel._on_consumer_cancelled_by_broker
        )
    route = _route(channel)

    def cancelled(answer: Any) -> None:
        route.on_delivery = None
        on_cancel(answer)

    impl.add_on_cancel_callback(cancelled)
    route.tag = impl.basic_consume(
        queue,
        lambda _c, m, p, b: on_message(m.exchange, m.routing_key, m.delivery_tag, m.redelivered, p, b),
        auto_ack=False,
        callback=on_ready,
    )
    route.on_delivery = on_message


def rpc_start(channel: Any, like: Any, payload: bytes, reply: Any, on_reply: Callable[[Any], None]) -> None:
    """On an asynchronous channel: send `like` with `payload`; `on_reply(frame)` when `reply` comes."""
    channel._rpc(Prepared(like, payload), on_reply, [reply])


def rpc(channel: Any, like: Any, payload: bytes, reply: Any) -> Any:
    """Send `like` (a pika method class) with the arguments in `payload` and wait for its
    `reply` frame; pika's ChannelClosedByBroker when the broker refuses."""
    answers: list[Any] = []
    channel._impl._rpc(Prepared(like, payload), answers.append, [reply])
    channel._flush_output(lambda: bool(answers))
    return answers[0]
