"""From an `Endpoint` to a pika connection, and from pika's connection errors to one line."""

from __future__ import annotations

import ssl
from typing import Any

import pika
import pika.exceptions as px

from routing.errors import ChannelClosed, ConnectionFailed, PreconditionFailed
from routing.transport.rabbitmq._pika import open_connection
from routing.transport.rabbitmq._url import Endpoint


def parameters(ep: Endpoint, name: str | None) -> pika.ConnectionParameters:
    options: dict[str, Any] = {
        "host": ep.host,
        "port": ep.port,
        "virtual_host": ep.vhost,
        "credentials": pika.PlainCredentials(ep.username, ep.password, erase_on_connect=False),
        "connection_attempts": ep.connection_attempts,
        "retry_delay": ep.retry_delay,
        "client_properties": {"connection_name": ep.connection_name or name or "routing"},
    }
    for option in ("heartbeat", "blocked_connection_timeout", "socket_timeout"):
        if getattr(ep, option) is not None:
            options[option] = getattr(ep, option)
    if ep.tls:
        try:
            context = ssl.create_default_context(cafile=ep.cafile)
            if ep.certfile:
                context.load_cert_chain(ep.certfile, ep.keyfile)
        except (OSError, ssl.SSLError) as exc:
            raise ConnectionFailed(f"{ep.url}: TLS files cannot be used: {exc}") from exc
        if not ep.verify:  # the explicit `verify=false` opt-out
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        options["ssl_options"] = pika.SSLOptions(context, server_hostname=ep.server_name or ep.host)
    return pika.ConnectionParameters(**options)


def root_cause(exc: BaseException) -> BaseException:
    """The innermost OS or TLS error under pika's connection-workflow wrappers."""
    seen = 0
    while seen < 10:
        seen += 1
        inner = getattr(exc, "exception", None) or next(
            (a for a in getattr(exc, "args", ()) if isinstance(a, BaseException)), None
        )
        if inner is None and getattr(exc, "exceptions", None):
            inner = exc.exceptions[-1]  # type: ignore[attr-defined]
        if inner is None:
            return exc
        exc = inner
    return exc


def connect_error(ep: Endpoint, exc: BaseException) -> ConnectionFailed:
    """One line naming the host and what went wrong; never the password."""
    where = f"{ep.host}:{ep.port}"
    if isinstance(exc, px.ProbableAuthenticationError | px.AuthenticationError):
        why = f"user {ep.username!r} was refused: wrong username or password"
    elif isinstance(exc, px.ProbableAccessDeniedError):
        why = f"vhost {ep.vhost!r} does not exist or user {ep.username!r} may not use it"
    elif isinstance(exc, px.ConnectionClosedByBroker):
        why = f"the broker closed the connection: {exc.reply_code} {exc.reply_text}"
    elif isinstance(exc, px.IncompatibleProtocolError):
        why = "it does not speak AMQP 0-9-1 on this port (TLS port with amqp://?)"
    else:
        cause = root_cause(exc)
        if isinstance(cause, ssl.SSLCertVerificationError):
            why = f"TLS certificate not trusted: {cause.verify_message}"
        elif isinstance(cause, ssl.SSLError):
            why = f"TLS failed: {cause.reason or cause} (is it a TLS port?)"
        elif isinstance(cause, ConnectionRefusedError):
            why = "connection refused: is RabbitMQ running and listening on that port?"
        elif isinstance(cause, OSError):
            why = f"cannot connect: {cause.strerror or cause}"
        else:
            why = f"cannot connect: {type(cause).__name__} {cause}".strip()
    return ConnectionFailed(f"{ep.url} ({where}): {why}")


def connect(ep: Endpoint, name: str | None) -> Any:
    """A `BlockingConnection` to `ep`, or `ConnectionFailed` naming the host and the reason."""
    try:
        return open_connection(parameters(ep, name))
    except (px.AMQPError, OSError, ssl.SSLError) as exc:
        raise connect_error(ep, exc) from exc


def channel_error(exc: Any, what: str, ep: Endpoint) -> ChannelClosed:
    """The broker closed a channel: `ChannelClosed` (406: `PreconditionFailed`) with its
    reply code and text, what was being done, and on which node."""
    kind = PreconditionFailed if exc.reply_code == 406 else ChannelClosed
    return kind(exc.reply_code, f"{exc.reply_text} ({what} on {ep.host}:{ep.port})")
