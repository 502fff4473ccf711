"""RabbitMQ over pika. pika is imported in this subpackage and nowhere else in `routing`.

One `BlockingConnection`, driven by whichever thread calls in (calls are serialized by a
lock). Publisher confirms are pipelined: the confirm-mode channel's ack/nack/return
callbacks feed a `ConfirmTracker`, so `publish` returns at once and up to `window`
messages are in flight. Deliveries land in per-consumer buffers from the channel
callbacks; `Consumer.get` pumps I/O until its buffer has one. When the connection drops,
unconfirmed publications settle as UNCONFIRMED (or are sent again with `resend=True`); the
next call reconnects with exponential backoff and jitter, declares again what was declared,
and resumes the consumers. Every pika exception becomes a `routing.errors` one here.

    _connect    URL endpoint -> pika parameters; connection errors -> ConnectionFailed
    _wire       Properties from pika's; pika's table codec pointed at ours (routing._amqp)
    _consumer   a consumer's channel, buffer and recovery
    _transport  RabbitTransport
"""

from __future__ import annotations

from routing.transport.rabbitmq._transport import RabbitTransport

__all__ = ["RabbitTransport"]
