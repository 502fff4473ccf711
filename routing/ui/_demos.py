"""The four demos as the page plays them: each demo's topology and its messages, one step each.

The topologies and messages are the demos' own (`routing.demos.*`: `topology(prefix)` and the
records, messages, events and jobs each one publishes); the page publishes them one by one
and shows each message's path, where `routing demo NAME` prints tables.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from routing.demos import cache_invalidation, header_filtering, topic_logs, work_queue
from routing.topology import Topology

__all__ = ["DEMOS", "Demo", "Step"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One message of a demo: where it goes, with what key and headers, and its caption."""

    title: str
    exchange: str
    routing_key: str = ""
    headers: dict[str, Any] = field(default_factory=dict)
    body: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "exchange": self.exchange,
            "routing_key": self.routing_key,
            "headers": self.headers,
            "body": self.body,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Demo:
    name: str
    summary: str  # the first line of the demo module's docstring
    topology: Callable[[str], Topology]
    steps: Callable[[str], tuple[Step, ...]]


def _first_line(text: str | None) -> str:
    return " ".join((text or "").split("\n\n")[0].split())


def _topic_logs(prefix: str) -> tuple[Step, ...]:
    exchange = f"{prefix}logs"
    return tuple(
        Step(
            title=f"#{n} {service}.{level}: {text}",
            exchange=exchange,
            routing_key=f"{service}.{level}",
            body=text,
        )
        for n, (service, level, text) in enumerate(topic_logs.RECORDS, 1)
    )


def _header_filtering(prefix: str) -> tuple[Step, ...]:
    exchange = f"{prefix}attributes"
    # The demo publishes envelopes with to_properties(..., ce_headers=True): ce-type is a header.
    return tuple(
        Step(
            title=f"{label} ce-type={kind} {' '.join(f'{k}={v}' for k, v in headers.items())}",
            exchange=exchange,
            headers={"ce-type": kind, **headers},
            body=json.dumps(data),
        )
        for label, kind, data, headers in header_filtering.MESSAGES
    )


def _cache_invalidation(prefix: str) -> tuple[Step, ...]:
    exchange = cache_invalidation.exchange(prefix).name
    return tuple(
        Step(
            title=f"{label} {kind} {json.dumps(data)}",
            exchange=exchange,
            headers={"ce-type": kind},
            body=json.dumps(data),
        )
        for label, kind, data in cache_invalidation.EVENTS
    )


def _work_queue(prefix: str) -> tuple[Step, ...]:
    queue = f"{prefix}resize"
    return tuple(
        Step(
            title=f"job {n} to the default exchange, key {queue!r} (the queue's name)",
            exchange="",
            routing_key=queue,
            body=json.dumps({"id": n, "image": f"uploads/{n}.png", "width": 320}),
        )
        for n in range(1, work_queue.JOBS + 1)
    )


DEMOS: dict[str, Demo] = {
    d.name: d
    for d in (
        Demo(name=topic_logs.NAME, summary=_first_line(topic_logs.__doc__), topology=topic_logs.topology,
             steps=_topic_logs),
        Demo(name=header_filtering.NAME, summary=_first_line(header_filtering.__doc__),
             topology=header_filtering.topology, steps=_header_filtering),
        Demo(name=cache_invalidation.NAME, summary=_first_line(cache_invalidation.__doc__),
             topology=cache_invalidation.topology, steps=_cache_invalidation),
        Demo(name=work_queue.NAME, summary=_first_line(work_queue.__doc__), topology=work_queue.topology,
             steps=_work_queue),
    )
}  # fmt: skip
