"""Broker URLs: which broker they name, and how to show them without the password."""

from __future__ import annotations

import os
import re

__all__ = [
    "ENV_VAR",
    "MEMORY_URL",
    "describe",
    "is_memory",
    "one_line",
    "redact",
    "resolve",
    "split_urls",
]


ENV_VAR = "ROUTING_URL"
MEMORY_URL = "memory://"


def resolve(url: str | None = None) -> str:
    """The URL given, else `ROUTING_URL`, else the embedded broker."""
    return url or os.environ.get(ENV_VAR) or MEMORY_URL


def is_memory(url: str) -> bool:
    return url.partition(":")[0].strip().lower() == "memory"  # urlsplit() raises on some typos


# Where a new URL starts in a comma-separated list: a comma, then a scheme and `://`.
# Schemes are case-insensitive (RFC 3986 3.1): `AMQP://` starts a URL as `amqp://` does.
_NEXT_URL = re.compile(r",(?=\s*[A-Za-z][A-Za-z0-9+.-]*://)")


def split_urls(urls: str) -> list[str]:
    """The URLs of a comma-separated list (a whole cluster in one `ROUTING_URL`), each as
    written, spaces and all: `",".join()` gives the text back.

    A comma starts a new URL only where a scheme follows it; one elsewhere (in a query
    option, or unescaped in a password) stays in its URL. A password is safest with its
    commas percent-encoded (`%2C`).
    """
    return _NEXT_URL.split(urls)


def redact(url: str) -> str:
    """The URL with any password replaced by `***`, safe for logs and error messages.

    Each URL of a comma-separated list is redacted. The user information is taken to end at
    the last `@`: a password written with `/`, `?`, `#` or `@` unescaped (base64 passwords
    hold `/`) cuts a standard URL parse short and would show the rest of it. A URL with an
    `@` in its query string therefore shows less than it could, never more.
    """
    return ",".join(_redact_one(part) for part in split_urls(url))


# The `management=` option of an AMQP URL holds a URL of its own, credentials and all.
_MANAGEMENT_OPTION = re.compile(r"[?&]management=")


def _redact_one(url: str) -> str:
    option = _MANAGEMENT_OPTION.search(url)
    if option is not None:  # redact the AMQP part and the management URL each on its own
        head, tail = url[: option.start()], url[option.end() :]
        value, amp, rest = tail.partition("&")
        return f"{_redact_userinfo(head)}{option.group()}{_redact_userinfo(value)}{amp}{rest}"
    return _redact_userinfo(url)


def _redact_userinfo(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    prefix = scheme + sep
    if not sep:  # no scheme: `user:pass@host` is still a password
        prefix, rest = "", url
    userinfo, at, host = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    return f"{prefix}{userinfo.split(':', 1)[0]}:***@{host}"


# user:password@ inside any URL of a text (an error message from elsewhere may hold one)
_USERINFO_IN_TEXT = re.compile(r"(://[^:/?#@\s]*:)[^@\s]*@")


def one_line(text: str) -> str:
    """`text` on one line, any URL's password shown as `***`: how an error is shown to a person."""
    return _USERINFO_IN_TEXT.sub(r"\1***@", " ".join(text.split()))


def describe(url: str) -> str:
    """A one-line name for the broker a URL points at, for the CLI's first line."""
    if is_memory(url):
        return f"broker: embedded (in-process); set {ENV_VAR} or --url to use RabbitMQ"
    return f"broker: {redact(url)}"
