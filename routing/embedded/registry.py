"""The process-wide registry of embedded brokers: one per `memory://` URL.

`memory://NAME?rabbitmq=3.10` names the broker NAME and the release it behaves as (a profile,
`routing.profiles`; default the newest verified). A URL without `rabbitmq=` takes the broker
as it is; one that asks for another release than the broker of that name already has is
refused: one broker cannot be two releases at once.
"""

from __future__ import annotations

import threading
from urllib.parse import parse_qsl

from routing.embedded.broker import EmbeddedBroker
from routing.profiles import Profile, ProfileError, profile

__all__ = ["broker_for", "broker_name", "forget", "url_profile"]

_REGISTRY: dict[str, EmbeddedBroker] = {}
_REGISTRY_LOCK = threading.Lock()
_PARAMETERS = ("rabbitmq",)


def _parts(url: str) -> tuple[str, dict[str, str]]:
    rest = url.split(":", 1)[1] if ":" in url else ""
    path, _, query = rest.partition("?")
    options = dict(parse_qsl(query, keep_blank_values=True))
    unknown = sorted(options.keys() - set(_PARAMETERS))
    if unknown:
        known = ", ".join(_PARAMETERS)
        raise ProfileError(f"memory:// URL: unknown parameter {unknown[0]!r}; known: {known}")
    return path.lstrip("/").rstrip("/"), options


def broker_name(url: str) -> str:
    """`memory://` is the broker ''; `memory://other` (or `memory:other`) is 'other'."""
    return _parts(url)[0]


def url_profile(url: str) -> Profile | None:
    """The release a `memory://` URL asks for (`?rabbitmq=3.10`), or None when it names none."""
    wanted = _parts(url)[1].get("rabbitmq")
    return None if wanted is None else profile(wanted)


def broker_for(url: str) -> EmbeddedBroker:
    """The process-wide broker for a `memory://` URL, created on first use."""
    name = broker_name(url)
    wanted = url_profile(url)
    with _REGISTRY_LOCK:
        broker = _REGISTRY.get(name)
        if broker is None:
            broker = _REGISTRY[name] = EmbeddedBroker(name, rabbitmq=wanted)
        elif wanted is not None and wanted is not broker.profile:
            shown = f"memory://{name}"
            raise ProfileError(
                f"{shown} is already an embedded RabbitMQ {broker.profile.name} in this process; "
                f"{url} asks for RabbitMQ {wanted.name}: use another broker name for it"
            )
        return broker


def forget(url: str) -> None:
    """Drop a broker from the registry (tests): the next transport on that URL starts empty."""
    with _REGISTRY_LOCK:
        _REGISTRY.pop(broker_name(url), None)
