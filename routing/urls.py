"""Broker URLs: which broker they name, and how to show them without the password."""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

ENV_VAR = "ROUTING_URL"
MEMORY_URL = "memory://"


def resolve(url: str | None = None) -> str:
    """The URL given, else `ROUTING_URL`, else the embedded broker."""
    return url or os.environ.get(ENV_VAR) or MEMORY_URL


def is_memory(url: str) -> bool:
    return urlsplit(url).scheme == "memory"


def redact(url: str) -> str:
    """The URL with any password replaced by `***`, safe for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def describe(url: str) -> str:
    """A one-line name for the broker a URL points at, for the CLI's first line."""
    if is_memory(url):
        return f"broker: embedded (in-process); set {ENV_VAR} or --url to use RabbitMQ"
    return f"broker: {redact(url)}"
