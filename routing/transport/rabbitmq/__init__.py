"""RabbitMQ over pika. pika is imported in this subpackage and nowhere else in `routing`.

One `BlockingConnection`, driven by whichever thread calls in (calls are serialized by a
lock). Publisher confirms are pipelined: the confirm-mode channel's ack/nack/return
callbacks feed a `ConfirmTracker`, so `publish` returns at once and up to `window`
messages are in flight. Deliveries land in per-consumer buffers from the channel
callbacks; `Consumer.get` pumps I/O until its buffer has one. When the connection drops,
unconfirmed publications settle as UNCONFIRMED (or are sent again with `resend=True`); the
next call reconnects with exponential backoff and jitter, declares again what was declared,
and resumes the consumers. Every pika exception becomes a `routing.errors` one, in
`Connection.errors`.

`AsyncRabbitTransport` is the same for an event loop, on pika's `AsyncioConnection`, sharing
everything that is not I/O: URLs, parameters and connect errors, the error translation, the
backoff, frames, content-header decoding, confirm tracking and the declare walk.

    _connection  the pika connection, its lock, pumping, reconnects, and `errors()`: the one
                 place pika's exceptions become `routing.errors` ones
    _connect     URL endpoint -> pika parameters; connection errors -> ConnectionFailed
    _pika        every use of pika's private attributes; checks the pika version at import
    _encode      basic.publish frames and declare/bind arguments, with our codec (routing._amqp)
    _decode      a content header's properties, with our codec (no patch of pika.data)
    _consumer    a consumer's channel, buffer and recovery
    _transport   RabbitTransport
    _confirms    publisher-confirm tracking (pika-free), for both transports
    _channel     the channel methods with a field table (and unbind), for both channel kinds
    _declared    what was declared, to declare again after a reconnect (pika-free)
    _aio_connection, _aio_consumer, _aio_transport
                 the asyncio twins: AsyncConnection, AsyncRabbitConsumer, AsyncRabbitTransport
    _declare_ops the channel side of the one declare walk, and bindings read from the management API
    _management  the management HTTP API client: one place for its auth and its errors
    _url         amqp:// URL lists -> endpoints (one splitter: routing.urls.split_urls)
"""

from __future__ import annotations

from routing.transport.rabbitmq._aio_transport import AsyncRabbitTransport
from routing.transport.rabbitmq._transport import RabbitTransport

__all__ = ["AsyncRabbitTransport", "RabbitTransport"]
