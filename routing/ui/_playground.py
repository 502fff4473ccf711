"""What `routing ui`'s page does, without HTTP: one topology, one broker, publish with the trace.

A `Playground` holds the topology the page draws and the broker messages go to: embedded
(one in-process broker per RabbitMQ profile, so that the path the page shows is the one the
broker took under the same release's rules) or the live RabbitMQ the command line named, whose
announced version picks the rules. Every call takes one lock: a blocking transport serves one
caller at a time. Nothing here reaches another broker than the one it was made with, and
nothing it returns holds a password (URLs go through `routing.urls.redact`).
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Mapping
from typing import Any

from routing._json import header_value
from routing.definitions import load_definitions
from routing.demos._common import claim, reset
from routing.embedded import forget
from routing.errors import BadInput, RoutingError
from routing.management import Management
from routing.pipeline import Explanation, explain
from routing.profiles import PROFILES, profile
from routing.properties import Properties
from routing.topology import DestinationType, Topology
from routing.transport import Delivery, Outcome, Transport, open_transport
from routing.ui._demos import DEMOS
from routing.ui._layout import edge_id, layout, node_id
from routing.ui._values import plain
from routing.urls import is_memory, redact

__all__ = ["PEEK_LIMIT", "Playground", "parse_headers"]

PEEK_LIMIT = 20
_BODY_SHOWN = 2000


def parse_headers(text: str) -> dict[str, Any]:
    """Headers as typed on the page: a JSON object, or one `NAME=VALUE` per line (the value is
    JSON when it parses, as with `--header`)."""
    text = text.strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            value = header_value(text)
        except RecursionError:
            raise BadInput("headers: nested too deeply") from None
        if not isinstance(value, dict):
            raise BadInput("headers: not a JSON object; write {...} or one NAME=VALUE per line")
        return value
    out: dict[str, Any] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        name, sep, raw = line.strip().partition("=")
        if not sep or not name.strip():
            shown = line.strip() if len(line.strip()) <= 60 else line.strip()[:60] + "..."
            raise BadInput(f"header {shown!r} is not NAME=VALUE (e.g. region=eu)")
        out[name.strip()] = header_value(raw.strip())
    return out


def _keys(text: Any, field: str) -> list[str]:
    if not isinstance(text, str):
        raise BadInput(f"{field}: expected text, comma-separated routing keys")
    return [k.strip() for k in text.split(",") if k.strip()]


def _text(form: Mapping[str, Any], field: str) -> str:
    value = form.get(field, "")
    if not isinstance(value, str):
        raise BadInput(f"{field}: expected text, got {type(value).__name__}")
    return value


class Playground:
    """The page's topology and broker. `url` None (or memory://) is the embedded broker;
    amqp:// is RabbitMQ, whose topology is read through its management API when `topology` is
    None, and on which `topology`, when given, is declared."""

    def __init__(
        self,
        topology: Topology | None = None,
        *,
        url: str | None = None,
        source: str = "",
        demo_prefix: str = "demo.",
    ) -> None:
        self._lock = threading.RLock()
        self.live = url is not None and not is_memory(url)
        self.source = source
        self.demo_prefix = demo_prefix
        self._demo: str | None = None
        self._transports: dict[str, Transport] = {}
        self._embedded: list[str] = []
        self.version = 0  # changes with the drawn topology, so that every open page redraws
        if self.live:
            assert url is not None
            self.broker = redact(url)
            self._management: Management | None = Management.for_broker(url) if topology is None else None
            transport = open_transport(url, name="routing ui")
            self._transports["live"] = transport
            self.profile = profile(transport.server_version)
            self._active = "live"
            if topology is None:
                topology = self._read_broker()
            else:
                transport.declare(topology)
        else:
            self.broker = "embedded (in this process)"
            self._management = None
            self._name = f"ui-{uuid.uuid4().hex[:8]}"
            self.profile = profile(None)
            self._active = ""
        self._given = topology if topology is not None else Topology()
        self._show(self._given)
        if not self.live:
            self._use(self.profile.name)

    # ------------------------------------------------------------------ state

    def _read_broker(self) -> Topology:
        assert self._management is not None
        return load_definitions(self._management.definitions(), vhost=self._management.vhost)

    def _show(self, topology: Topology) -> None:
        self.topology = topology
        self._edges = {b: edge_id(i) for i, b in enumerate(topology.bindings)}
        self._drawing = layout(topology)
        self.version += 1

    def _use(self, name: str) -> None:
        """Offline: make the embedded broker of profile `name` the one messages go to."""
        if name not in self._transports:
            url = f"memory://{self._name}-{name}?rabbitmq={name}"
            self._embedded.append(url)
            self._transports[name] = open_transport(url, name="routing ui")
        self._active = name
        self.profile = PROFILES[name]
        self._transports[name].declare(self.topology)

    @property
    def _transport(self) -> Transport:
        return self._transports[self._active]

    def view(self) -> dict[str, Any]:
        """Everything the page draws: the broker, the rules, the topology laid out, the depths."""
        with self._lock:
            exchanges = ["", *(e.name for e in self.topology.exchanges if not e.internal)]
            bound = {b.source for b in self.topology.bindings}
            exchanges += sorted(n for n in bound if n.startswith("amq.") and n not in exchanges)
            return {
                "version": self.version,
                "broker": self.broker,
                "live": self.live,
                "profile": self.profile.name,
                "rules": f"RabbitMQ {self.profile.name} ({self.profile.releases})",
                "server_version": self._transport.server_version if self.live else None,
                "profiles": [] if self.live else list(PROFILES),
                "source": self.source,
                "demo": self._demo,
                "steps": [s.as_dict() for s in DEMOS[self._demo].steps(self.demo_prefix)]
                if self._demo
                else [],
                "demos": [{"name": d.name, "summary": d.summary} for d in DEMOS.values()],
                "exchanges": exchanges,
                "queues": [q.name for q in self.topology.queues],
                "drawing": self._drawing.as_dict(),
                "depths": self._depths(),
            }

    def _depths(self) -> dict[str, int | None]:
        out: dict[str, int | None] = {}
        for q in self.topology.queues:
            try:
                out[q.name] = self._transport.message_count(q.name)
            except RoutingError:
                out[q.name] = None  # deleted on the broker since, say
        return out

    def depths(self) -> tuple[int, dict[str, int | None]]:
        """The topology's version and each queue's ready messages (None: the broker has no such queue)."""
        with self._lock:
            return self.version, self._depths()

    # ------------------------------------------------------------------ what the page asks

    def set_profile(self, name: str) -> dict[str, Any]:
        """Offline: route by release `name`'s rules ("3.10", "4.0"), on an embedded broker of that release."""
        with self._lock:
            if self.live:
                raise BadInput(
                    f"the rules are those of the broker itself, RabbitMQ {self._transport.server_version}"
                )
            if not isinstance(name, str) or name not in PROFILES:
                raise BadInput(f"no profile {name!r}; choose one of {', '.join(PROFILES)}")
            self._use(name)
            return self.view()

    def load(self, name: str) -> dict[str, Any]:
        """Draw demo `name`'s topology (declared on the broker), or with "" the topology the page
        started with (on a live broker without one, read again from the broker)."""
        with self._lock:
            if name and name not in DEMOS:
                raise BadInput(f"no demo {name!r}; the demos are {', '.join(DEMOS)}")
            self._drop_demo()
            if name:
                topology = DEMOS[name].topology(self.demo_prefix)
                if self.live:
                    claim(self._transport, topology, demo=name)
                self._demo = name
                self._show(topology)
            else:
                self._show(self._read_broker() if self._management is not None else self._given)
            if not self.live:
                for transport in self._transports.values():
                    transport.declare(self.topology)
            return self.view()

    def _drop_demo(self) -> None:
        """Delete the demo's entities, messages and all, as `routing demo` does when it ends."""
        if self._demo is None:
            return
        topology = DEMOS[self._demo].topology(self.demo_prefix)
        for transport in self._transports.values():
            with contextlib.suppress(RoutingError):
                reset(transport, topology)
        self._demo = None

    def publish(self, form: Mapping[str, Any]) -> dict[str, Any]:
        """Explain, then really publish (mandatory, confirmed): the trace, the queues, the outcome."""
        exchange, key, body = _text(form, "exchange"), _text(form, "routing_key"), _text(form, "body")
        headers = parse_headers(_text(form, "headers"))
        for field in ("CC", "BCC"):
            extra = _keys(form.get(field.lower(), ""), field)
            if extra:
                headers[field] = extra
        with self._lock:
            if self.topology.exchange(exchange) is None:
                names = ", ".join(repr(e.name) for e in self.topology.exchanges[:10]) or "none of its own"
                raise BadInput(f"no exchange {exchange!r} in the topology (it has {names})")
            result = explain(self.topology, exchange, key, headers or None, rabbitmq=self.profile)
            properties = Properties(headers=headers, content_type="text/plain; charset=utf-8")
            publication = self._transport.publish(exchange, key, body.encode(), properties, mandatory=True)
            self._transport.flush(10)
            depths = self._depths()
        return self._account(exchange, key, result, publication.outcome, depths)

    def _account(
        self, exchange: str, key: str, result: Explanation, outcome: Outcome | None, depths: Any
    ) -> dict[str, Any]:
        trace: list[dict[str, Any]] = []
        lit: list[str | None] = []
        tried: list[str | None] = []
        visited: set[str] = set()
        alternates: list[str] = []
        for step in result.trace:
            line: dict[str, Any] = {
                "exchange": step.exchange,
                "matched": step.matched,
                "reason": step.reason,
                "edge": None,
            }
            if step.exchange:
                visited.add(node_id("exchange", step.exchange))
            if step.binding is not None:
                line["edge"] = edge = self._edges.get(step.binding)
                b = step.binding
                kind = "queue" if b.destination_type is DestinationType.QUEUE else "exchange"
                line["destination"] = f"{b.destination} ({kind})" if kind == "exchange" else b.destination
                (lit if step.matched else tried).append(edge)
            elif step.matched and step.exchange:
                source = self.topology.exchange(step.exchange)
                if source is not None and source.alternate_exchange is not None:
                    alternates.append(step.exchange)
                    lit.append(f"alternate:{step.exchange}")
            trace.append(line)
        queues = sorted(result.queues)
        returned = outcome is Outcome.RETURNED
        if queues:
            verdict = f"reaches {len(queues)} queue{'s' if len(queues) > 1 else ''}: {', '.join(queues)}"
        else:
            verdict = "unroutable: no queue; published mandatory, so the broker returned it"
        if alternates:
            verdict += f" (by the alternate exchange of {', '.join(map(repr, alternates))})"
        notes = []
        if returned and queues:
            notes.append(
                "the broker returned it although the topology routes it: the broker's topology differs"
            )
        if not returned and not queues and outcome is Outcome.CONFIRMED:
            notes.append("the broker took it although the topology routes it nowhere: its topology differs")
        if outcome not in (Outcome.CONFIRMED, Outcome.RETURNED):
            notes.append(f"the broker's answer: {outcome or 'none in time'}")
        return {
            "exchange": exchange,
            "routing_key": key,
            "queues": queues,
            "unroutable": not queues,
            "alternates": alternates,
            "outcome": str(outcome) if outcome is not None else None,
            "verdict": verdict,
            "notes": notes,
            "rules": f"RabbitMQ {self.profile.name}",
            "trace": trace,
            "lit": {
                "edges": [e for e in lit if e],
                "tried": [e for e in tried if e],
                "exchanges": sorted(visited),
                "queues": [node_id("queue", q) for q in queues],
            },
            "depths": depths,
        }

    def _known(self, queue: Any) -> str:
        if not isinstance(queue, str) or self.topology.queue(queue) is None:
            raise BadInput(f"no queue {queue!r} in the topology")
        return queue

    def peek(self, queue: str, limit: int = PEEK_LIMIT) -> dict[str, Any]:
        """Up to `limit` messages at the head of `queue`, taken (basic.get) and put back (nack,
        requeue): they stay in the queue, marked redelivered."""
        with self._lock:
            queue = self._known(queue)
            taken: list[Delivery] = []
            while len(taken) < limit and (d := self._transport.get(queue)) is not None:
                taken.append(d)
            for d in reversed(taken):
                self._transport.nack(d, requeue=True)
            messages = [
                {
                    "exchange": d.exchange,
                    "routing_key": d.routing_key,
                    "redelivered": d.redelivered,
                    "headers": plain(dict(d.properties.headers)),
                    "body": d.body[:_BODY_SHOWN].decode("utf-8", "replace"),
                    "size": len(d.body),
                }
                for d in taken
            ]
            return {"queue": queue, "messages": messages, "depths": self._depths()}

    def purge(self, queue: str) -> dict[str, Any]:
        with self._lock:
            queue = self._known(queue)
            count = self._transport.purge(queue)
            return {"queue": queue, "purged": count, "depths": self._depths()}

    def close(self) -> None:
        """Delete a demo's entities, close the connections, forget the embedded brokers."""
        with self._lock:
            self._drop_demo()
            for transport in self._transports.values():
                with contextlib.suppress(RoutingError):
                    transport.close()
            for url in self._embedded:
                forget(url)
