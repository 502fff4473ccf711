"""Broadcast cache invalidations and config changes to every running instance of a service,
and never lose one silently.

    broadcaster = Broadcaster(transport, exchange="app.invalidations", source="urn:app:admin")
    broadcaster.invalidate("users", ["user:1"], reason="renamed")

    listener = Listener(url, exchange="app.invalidations", service="api")
    listener.attach(users_cache, name="users")      # a dict, a cachetools cache, an lru_cache
    listener.on_gap(lambda gap: print("missed events:", gap.cause))
    with listener:                                   # a thread of its own
        serve()

Each instance's listener has its own exclusive, auto-delete queue, which lives as long as
its connection: after a dropped connection or a broker restart the queue is declared again
and what was published meanwhile is gone. That, a publisher's sequence number jumping, and
the queue overflowing its max length are *gaps*: reported to `on_gap`, counted in `stats`,
and by default every attached cache is cleared, so no entry outlives an invalidation it missed.
"""

from routing.broadcast._broadcaster import Broadcaster, BroadcasterBase, broadcast_exchange, listener_topology
from routing.broadcast._core import (
    CACHE_INVALIDATE,
    CONFIG_CHANGED,
    PUBLISHER,
    SEQUENCE,
    Drop,
    Gap,
    GapCause,
    ListenerCore,
    ListenerStats,
    Received,
    drop_stale,
    stale_keys,
)
from routing.broadcast._listener import Listener, ListenerBase

__all__ = [
    "CACHE_INVALIDATE",
    "CONFIG_CHANGED",
    "PUBLISHER",
    "SEQUENCE",
    "Broadcaster",
    "BroadcasterBase",
    "Drop",
    "Gap",
    "GapCause",
    "Listener",
    "ListenerBase",
    "ListenerCore",
    "ListenerStats",
    "Received",
    "broadcast_exchange",
    "drop_stale",
    "listener_topology",
    "stale_keys",
]
