"""AMQP URLs parsed into plain values; the RabbitMQ transport turns them into pika parameters.

`amqp://user:pass@host:port/vhost?heartbeat=30&connection_attempts=3`. The vhost is
percent-encoded (`%2F` is "/"); an empty path means "/". `amqps://` turns TLS on with
certificate and host name verification; `cafile=` names the CA bundle, `certfile=` and
`keyfile=` a client certificate, and `verify=false` is the explicit, visible opt-out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

from routing.errors import ConnectionFailed
from routing.urls import redact, split_urls

DEFAULT_PORTS = {"amqp": 5672, "amqps": 5671}

# query option -> (what it must be, converter)
_FLOAT = (float, "a number of seconds")
_INT = (int, "an integer")
_OPTIONS: dict[str, tuple[type, str]] = {
    "heartbeat": _INT,
    "connection_attempts": _INT,
    "retry_delay": _FLOAT,
    "blocked_connection_timeout": _FLOAT,
    "socket_timeout": _FLOAT,
    "cafile": (str, "a path"),
    "certfile": (str, "a path"),
    "keyfile": (str, "a path"),
    "server_name": (str, "a host name"),
    "verify": (bool, "true or false"),
    "connection_name": (str, "a name"),
    "management": (str, "an http(s) URL"),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    """One broker node to connect to. `url` is redacted; the password is kept apart."""

    url: str
    host: str
    port: int
    vhost: str = "/"
    username: str = "guest"
    password: str = field(default="guest", repr=False)
    tls: bool = False
    heartbeat: int | None = None
    connection_attempts: int = 1
    retry_delay: float = 2.0
    blocked_connection_timeout: float | None = None
    socket_timeout: float | None = None
    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    server_name: str | None = None
    verify: bool = True
    connection_name: str | None = None
    management: str | None = None

    @property
    def where(self) -> str:
        """`host:port/vhost`, for error messages."""
        return f"{self.host}:{self.port} vhost {self.vhost!r}"

    @property
    def management_url(self) -> str:
        """The management HTTP API's base URL (no credentials): the `management=` option,
        else port 15672 (15671 with TLS) on the same host.

        Nothing in between: RabbitMQ does not tell an AMQP client where its management API
        listens (`connection.start` carries product, version, platform, cluster_name,
        copyright, information and capabilities only; checked on 3.10.8 and 4.0.5), so a
        node whose API is elsewhere must be named in its URL."""
        if self.management:
            return self.management.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:15671" if self.tls else f"http://{host}:15672"


def _convert(name: str, raw: str, url: str) -> object:
    kind, meaning = _OPTIONS[name]
    try:
        if kind is bool:
            lowered = raw.lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(raw)
            return lowered in ("true", "1", "yes")
        value = kind(raw)
    except ValueError:
        raise ConnectionFailed(f"{redact(url)}: option {name}={raw!r} must be {meaning}") from None
    if isinstance(value, int | float) and value < 0:
        raise ConnectionFailed(f"{redact(url)}: option {name}={raw!r} must not be negative")
    return value


def parse_url(url: str) -> Endpoint:
    """One `amqp://` or `amqps://` URL as an `Endpoint`; a clear error for anything else."""
    shown = redact(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        # Not the ValueError: urlsplit's message quotes the "port", which can be half a password.
        raise ConnectionFailed(
            f"{shown}: not a valid URL: check the port, and percent-encode / ? # @ : in the user"
            " name and password (%2F %3F %23 %40 %3A)"
        ) from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ConnectionFailed(f"{shown}: use amqp:// or amqps:// for RabbitMQ, not {scheme or 'no'} scheme")
    if not parts.hostname:
        raise ConnectionFailed(f"{shown}: no host; write amqp://user:pass@host:5672/vhost")
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if "/" in path:
        raise ConnectionFailed(f"{shown}: the vhost must be one path segment; write '/' as %2F")
    options: dict[str, object] = {}
    for name, raw in parse_qsl(parts.query, keep_blank_values=True):
        if name not in _OPTIONS:
            known = ", ".join(sorted(_OPTIONS))
            raise ConnectionFailed(f"{shown}: unknown option {name!r}; known options: {known}")
        options[name] = _convert(name, raw, url)
    if scheme == "amqp" and any(k in options for k in ("cafile", "certfile", "keyfile", "server_name")):
        raise ConnectionFailed(f"{shown}: TLS options need an amqps:// URL")
    return Endpoint(
        url=shown,
        host=parts.hostname,
        port=port or DEFAULT_PORTS[scheme],
        vhost=unquote(path) if path else "/",
        username=unquote(parts.username) if parts.username is not None else "guest",
        password=unquote(parts.password) if parts.password is not None else "guest",
        tls=scheme == "amqps",
        **options,  # type: ignore[arg-type]
    )


def parse_urls(urls: str | Sequence[str]) -> tuple[Endpoint, ...]:
    """Endpoints for failover, in order. A string may hold several URLs separated by commas
    (so one `ROUTING_URL` can name a whole cluster)."""
    if isinstance(urls, str):
        urls = [u.strip() for u in split_urls(urls) if u.strip()]
    endpoints = tuple(parse_url(u) for u in urls)
    if not endpoints:
        raise ConnectionFailed("no broker URL given; pass amqp://user:pass@host:5672/vhost")
    return endpoints
