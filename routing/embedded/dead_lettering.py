"""Dead-lettering as RabbitMQ 3.10 does it: the `x-death` header and cycle detection.

Source: `rabbit_dead_letter.erl` (3.10), checked against the broker here. The first death
prepends `{count, reason, queue, time, exchange, routing-keys[, original-expiration]}` and
sets `x-first-death-*`; a later death in the same (queue, reason) only increments `count`
of the existing entry, keeping its time, exchange and keys, and moves it to the front with
its keys sorted. Every header table RabbitMQ rewrites comes back sorted by key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from routing._frozen import FrozenDict
from routing.matching import header_routes
from routing.profiles import Profile
from routing.properties import Properties

__all__ = [
    "DELIVERY_LIMIT",
    "EXPIRED",
    "MAXLEN",
    "REJECTED",
    "Deaths",
    "dead_letter_headers",
    "dead_letter_properties",
    "death_headers",
    "dropped_as_cycle",
    "is_cycle",
    "record_death",
]

REJECTED = "rejected"
EXPIRED = "expired"
MAXLEN = "maxlen"
DELIVERY_LIMIT = "delivery_limit"


def dead_letter_headers(
    headers: Mapping[str, Any] | None,
    *,
    reason: str,
    queue: str,
    exchange: str,
    routing_key: str,
    expiration: str | None,
    drop_cc: bool,
    now: datetime | None = None,
    regroup_reverses: bool = True,
) -> dict[str, Any]:
    """The headers of a message dead-lettered from `queue`.

    `exchange` and `routing_key` are where the message was last published (its first routing
    key); `drop_cc` is set when the queue has `x-dead-letter-routing-key`, which replaces the
    keys, so RabbitMQ deletes `CC`. `regroup_reverses`: 3.10 regroups two or more earlier
    entries by (queue, reason) with a fold that reverses them (`group_by_queue_and_reason`),
    so the older entries come back in reverse order behind the newest.
    """
    old = dict(headers or {})
    when = (now or datetime.now(UTC)).replace(microsecond=0)
    info: dict[str, Any] = {
        "reason": reason,
        "queue": queue,
        "time": when,
        "exchange": exchange,
        "routing-keys": [routing_key, *header_routes(old, strict=False)],
    }
    if expiration is not None:
        info["original-expiration"] = expiration
    deaths = old.get("x-death")
    if not isinstance(deaths, list | tuple) or not deaths:
        old["x-first-death-reason"] = reason
        old["x-first-death-queue"] = queue
        old["x-first-death-exchange"] = exchange
        old["x-death"] = [{"count": 1, **info}]
    else:
        if regroup_reverses and len(deaths) > 1:
            deaths = _regrouped(deaths)
        same = [d for d in deaths if _is(d, queue, reason)]
        others = [d for d in deaths if not _is(d, queue, reason)]
        if same:
            entry = dict(same[0])
            entry["count"] = _count(entry) + 1
        else:
            entry = {"count": 1, **info}
        old["x-death"] = [dict(sorted(entry.items())), *others]
    if drop_cc:
        old.pop("CC", None)
    return dict(sorted(old.items()))


def _regrouped(deaths: Sequence[Any]) -> list[Any]:
    """One entry per (queue, reason), the first of each, in reverse order (3.10)."""
    seen: set[tuple[Any, Any]] = set()
    grouped: list[Any] = []
    for death in deaths:
        key = (death.get("queue"), death.get("reason")) if isinstance(death, Mapping) else (id(death), None)
        if key not in seen:
            seen.add(key)
            grouped.insert(0, death)
    return grouped


def _is(death: Any, queue: str, reason: str) -> bool:
    return isinstance(death, Mapping) and death.get("queue") == queue and death.get("reason") == reason


def _count(death: Mapping[str, Any]) -> int:
    count = death.get("count")
    return count if isinstance(count, int) and not isinstance(count, bool) else 0


def is_cycle(queue: str, deaths: Sequence[Any]) -> bool:
    """Whether dead-lettering into `queue` closes a loop with no rejection in it.

    RabbitMQ drops such a message (it would go round for ever): walk the deaths newest
    first up to the first one in `queue`; a cycle is one where none of them was `rejected`.
    """
    for i, death in enumerate(deaths):
        if isinstance(death, Mapping) and death.get("queue") == queue:
            return all(isinstance(d, Mapping) and d.get("reason") != REJECTED for d in deaths[: i + 1])
    return False


def dropped_as_cycle(queue: str, reason: str, deaths: Sequence[Any]) -> bool:
    """Whether RabbitMQ drops, instead of delivering, a message that died of `reason` and is
    dead-lettered into `queue`; `deaths` is its `x-death`, this death included, newest first.

    `rabbit_dead_letter:detect_cycles` (3.10 and 4.0): a rejection is never a cycle (a
    consumer decided); any other reason is, when the message already died in `queue` and
    nothing since was a rejection (`is_cycle`). The embedded broker and `routing.lint` both
    ask here."""
    return reason != REJECTED and is_cycle(queue, deaths)


Deaths = tuple[tuple[dict[str, Any], ...], dict[str, Any]]
"""4.0's death records of a message (newest first) and its first death."""


def record_death(
    deaths: Deaths | None,
    *,
    reason: str,
    queue: str,
    exchange: str,
    routing_keys: list[str],
    expiration: str | None,
    now: datetime | None = None,
) -> Deaths:
    """The records after one more death, as 4.0's `mc:record_death` keeps them: in the message,
    not in its headers (an `x-death` a client published is not read). A repeat in the same
    (queue, reason) counts up and moves to the front, keeping its exchange and keys."""
    records = list(deaths[0]) if deaths else []
    for i, old in enumerate(records):
        if old["queue"] == queue and old["reason"] == reason:
            entry = {**old, "count": old["count"] + 1}
            del records[i]
            break
    else:
        entry = {} if expiration is None else {"original-expiration": expiration}
        entry.update(
            count=1,
            reason=reason,
            queue=queue,
            time=(now or datetime.now(UTC)).replace(microsecond=0),
            exchange=exchange,
            **{"routing-keys": routing_keys},
        )
    first = deaths[1] if deaths else entry
    return (entry, *records), first


def death_headers(headers: Mapping[str, Any] | None, deaths: Deaths, *, drop_cc: bool) -> dict[str, Any]:
    """The headers 4.0 gives a dead letter: `x-death` and `x-first-death-*` from its records
    (replacing any a client set), and `x-last-death-*` for the newest death."""
    records, first = deaths
    out = dict(headers or {})
    out["x-death"] = [dict(r) for r in records]
    for which, death in (("first", first), ("last", records[0])):
        out[f"x-{which}-death-reason"] = death["reason"]
        out[f"x-{which}-death-queue"] = death["queue"]
        out[f"x-{which}-death-exchange"] = death["exchange"]
    if drop_cc:
        out.pop("CC", None)
    return dict(sorted(out.items()))


def dead_letter_properties(
    properties: Properties,
    deaths: Deaths | None,
    *,
    reason: str,
    queue: str,
    exchange: str,
    routing_key: str,
    dead_letter_routing_key: str | None,
    profile: Profile,
) -> tuple[Properties, Deaths | None]:
    """The properties of a message dead-lettered from `queue`, as `profile`'s release writes
    them (3.10 from the `x-death` header it carries, 4.0 from its death records), and its
    death records after this death (None on 3.10). `exchange` and `routing_key` are where it
    was last published; the expiration goes (the copy is a new message)."""
    drop_cc = dead_letter_routing_key is not None and profile.dead_letter_routing_key_drops_cc
    records = None
    if profile.reads_client_x_death:
        headers = dead_letter_headers(
            properties.headers,
            reason=reason,
            queue=queue,
            exchange=exchange,
            routing_key=routing_key,
            expiration=properties.expiration,
            drop_cc=drop_cc,
            regroup_reverses=profile.x_death_regroup_reverses,
        )
    else:
        records = record_death(
            deaths,
            reason=reason,
            queue=queue,
            exchange=exchange,
            routing_keys=[routing_key, *header_routes(properties.headers, strict=False)],
            expiration=properties.expiration,
        )
        headers = death_headers(properties.headers, records, drop_cc=drop_cc)
    return replace(properties, headers=FrozenDict(headers), expiration=None), records
