"""From an `Endpoint` to a pika connection, from pika's connection errors to one line, and
from pika's exceptions on a live connection to `routing.errors` ones (`translate`): both
connection classes (blocking and asyncio) use these, and the one backoff (`backoff`)."""

from __future__ import annotations

import random
import ssl
import time
from typing import Any

import pika
import pika.exceptions as px
from loguru import logger

from routing.errors import BrokerError, ChannelClosed, ConnectionFailed, ConnectionLost, PreconditionFailed
from routing.transport.rabbitmq._pika import open_connection, workflow_error
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
    """One line naming the host and what went wrong; never the password. `exc` may be what
    pika's connection workflow gives (the last attempt's error is the one named)."""
    exc = workflow_error(exc)
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


def backoff(attempt: int) -> float:
    """Seconds to wait before reconnect attempt `attempt + 1`: exponential (0.2 s doubling, at
    most 5 s), with full jitter, so clients that lost the same node do not come back in step."""
    return random.uniform(0, min(5.0, 0.1 * 2**attempt))


def reconnect_pause(
    attempt: int, deadline: float, timeout: float, failed: ConnectionFailed, url: str
) -> float:
    """After failed reconnect attempt `attempt` (1, 2...): how long to wait before the next one
    (`backoff`, logged), or `ConnectionLost` when that wait would end past `deadline` (a
    `time.monotonic()`), the `timeout` seconds after the drop."""
    pause = backoff(attempt)
    if time.monotonic() + pause > deadline:
        raise ConnectionLost(
            f"connection lost and not re-established within {timeout:g}s: {failed}"
        ) from failed
    logger.bind(url=url).warning("reconnect attempt {} failed: {}", attempt, failed)
    return pause


def connect(ep: Endpoint, name: str | None) -> Any:
    """A `BlockingConnection` to `ep`, or `ConnectionFailed` naming the host and the reason."""
    params = parameters(ep, name)  # its own ConnectionFailed (TLS files), not wrapped again
    try:
        return open_connection(params)
    except (px.AMQPError, OSError, ssl.SSLError) as exc:
        raise connect_error(ep, exc) from exc


def none_answered(failures: list[ConnectionFailed]) -> ConnectionFailed:
    """What to raise when no endpoint of a list answered: the one failure, or all in one line."""
    if len(failures) == 1:
        return failures[0]
    error = ConnectionFailed("no broker answered: " + "; ".join(map(str, failures)))
    error.__cause__ = failures[-1]
    return error


def channel_error(exc: Any, what: str, ep: Endpoint) -> ChannelClosed:
    """The broker closed a channel: `ChannelClosed` (406: `PreconditionFailed`) with its
    reply code and text, what was being done, and on which node."""
    kind = PreconditionFailed if exc.reply_code == 406 else ChannelClosed
    return kind(exc.reply_code, f"{exc.reply_text} ({what} on {ep.host}:{ep.port})")


# What a dropped connection looks like from any call (ConnectionResetError: a reset socket
# that pika has not wrapped yet).
CONNECTION_ERRORS = (px.AMQPConnectionError, ConnectionResetError)


def translate(exc: BaseException, what: str, ep: Endpoint) -> BrokerError | None:
    """The `routing.errors` one for pika's `exc` raised during `what` on `ep`, or None when it
    is not pika's (nor a reset socket): a broker's refusal as `ChannelClosed` (406:
    `PreconditionFailed`) naming `what` and the node, a closed channel as `ChannelClosed`
    with code 0, a dropped connection as `ConnectionLost`, anything else of pika's as
    `BrokerError`. The caller raises it `from exc` (and forgets a dropped connection)."""
    if isinstance(exc, px.ChannelClosedByBroker):
        return channel_error(exc, what, ep)
    if isinstance(exc, px.AMQPChannelError):
        return ChannelClosed(0, f"channel closed during {what}")
    if isinstance(exc, CONNECTION_ERRORS):
        return ConnectionLost(f"{ep.url}: connection lost during {what}: {exc!r}")
    if isinstance(exc, px.AMQPError):
        return BrokerError(f"{ep.url}: {what} failed: {exc!r}")
    return None


def refusal(chan: Any, what: str, ep: Endpoint) -> ChannelClosed | None:
    """Why the broker closed `chan` (a channel of either connection: its `closed_by_broker` and
    `reason`), as `ChannelClosed` naming `what`; None if the broker did not close it."""
    if not chan.closed_by_broker:
        return None
    error = channel_error(chan.reason, what, ep)
    error.__cause__ = chan.reason
    return error
