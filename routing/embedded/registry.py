"""The process-wide registry of embedded brokers: one per `memory://` URL."""

from __future__ import annotations

import threading

from routing.embedded.broker import EmbeddedBroker

_REGISTRY: dict[str, EmbeddedBroker] = {}
_REGISTRY_LOCK = threading.Lock()


def broker_name(url: str) -> str:
    """`memory://` is the broker ''; `memory://other` (or `memory:other`) is 'other'."""
    rest = url.split(":", 1)[1] if ":" in url else ""
    return rest.lstrip("/").rstrip("/")


def broker_for(url: str) -> EmbeddedBroker:
    """The process-wide broker for a `memory://` URL, created on first use."""
    name = broker_name(url)
    with _REGISTRY_LOCK:
        broker = _REGISTRY.get(name)
        if broker is None:
            broker = _REGISTRY[name] = EmbeddedBroker(name)
        return broker


def forget(url: str) -> None:
    """Drop a broker from the registry (tests): the next transport on that URL starts empty."""
    with _REGISTRY_LOCK:
        _REGISTRY.pop(broker_name(url), None)
