"""Compare a `Topology` with a broker's definitions: pure, no I/O.

The broker side is what `GET /api/definitions/{vhost}` returns (or the whole-broker export,
filtered by `vhost`). The default exchange, the `amq.*` exchanges and the default exchange's
implicit bindings exist everywhere and are ignored. Exclusive queues belong to a connection:
RabbitMQ never lists them in definitions, so the topology's are skipped (and said so), and
broker bindings to queues the definitions do not list (someone's exclusive queue) too.

Bindings have no settings of their own: arguments are part of a binding's identity, so a
binding with other arguments is one to create plus one that exists only on the broker.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from routing.definitions import dump_definitions
from routing.topology import Topology

__all__ = ["MISSING", "Difference", "TopologyDiff", "as_management_shows", "diff_topology"]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()  # an argument one side does not have


@dataclass(frozen=True, slots=True)
class Difference:
    """One setting of one exchange or queue that the topology and the broker disagree on."""

    entity: str  # `queue 'jobs'`
    setting: str  # `durable`, or `argument 'x-message-ttl'`
    topology: Any
    broker: Any

    def describe(self) -> str:
        return f"{self.entity}: {self.setting}: topology {_show(self.topology)}, broker {_show(self.broker)}"


@dataclass(frozen=True, slots=True)
class TopologyDiff:
    """What declaring the topology would create, what differs, and what only the broker has."""

    create: tuple[str, ...] = ()
    differ: tuple[Difference, ...] = ()
    extra: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()  # in the topology but not comparable (exclusive queues)

    @property
    def equal(self) -> bool:
        """The broker holds exactly the topology, nothing more."""
        return not (self.drift or self.extra)

    @property
    def drift(self) -> bool:
        """The broker lacks or differs from something in the topology (what is only on the
        broker, another application's queues say, is not drift)."""
        return bool(self.create or self.differ)


def _show(value: Any) -> str:
    if value is MISSING:
        return "(not set)"
    return json.dumps(value, sort_keys=True)


def _canon(value: Any) -> Any:
    """A value compared as RabbitMQ compares arguments: 1 equals 1.0, True is not 1,
    and void is the string "undefined" as the management API shows it."""
    if value is None:
        return "undefined"
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", float(value))
    if isinstance(value, Mapping):
        return tuple(sorted((k, _canon(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_canon(v) for v in value)
    return value


def as_management_shows(value: Any) -> Any:
    """A value as the management API shows it: void is the string "undefined", tables are
    dicts and arrays lists (at any depth), everything else as it is."""
    if value is None:
        return "undefined"
    if isinstance(value, Mapping):
        return {k: as_management_shows(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_management_shows(v) for v in value]
    return value


def _items(definitions: Mapping[str, Any], section: str, vhost: str) -> list[Mapping[str, Any]]:
    items = definitions.get(section) or []
    return [i for i in items if isinstance(i, Mapping) and i.get("vhost", vhost) == vhost]


def _exchanges(items: list[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {}
    for item in items:
        name = str(item.get("name", ""))
        if name == "" or name.startswith("amq."):
            continue  # every vhost has them
        out[name] = {
            "type": item.get("type"),
            "durable": item.get("durable", True),
            "auto_delete": item.get("auto_delete", False),
            "internal": item.get("internal", False),
            "arguments": dict(item.get("arguments") or {}),
        }
    return out


def _queues(items: list[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {}
    for item in items:
        arguments = dict(item.get("arguments") or {})
        if "type" in item:  # rabbitmqctl's export writes the type beside the arguments
            arguments.setdefault("x-queue-type", item["type"])
        arguments.setdefault("x-queue-type", "classic")  # what RabbitMQ assumes when absent
        out[str(item.get("name", ""))] = {
            "durable": item.get("durable", True),
            "auto_delete": item.get("auto_delete", False),
            "arguments": arguments,
        }
    return out


def _bindings(items: list[Mapping[str, Any]], queues: set[str]) -> dict[tuple[Any, ...], str]:
    out = {}
    for item in items:
        source = str(item.get("source", ""))
        destination = str(item.get("destination", ""))
        kind = str(item.get("destination_type", "queue"))
        if source == "" or (kind == "queue" and destination not in queues):
            continue  # implicit, or to a queue of one connection
        key = str(item.get("routing_key", ""))
        arguments = dict(item.get("arguments") or {})
        identity = (source, kind, destination, key, _canon(arguments))
        out[identity] = _binding_label(source, kind, destination, key, arguments)
    return out


def _binding_label(source: str, kind: str, destination: str, key: str, arguments: Mapping[str, Any]) -> str:
    rule = [key] if key else []
    rule += [f"{k}={json.dumps(as_management_shows(v))}" for k, v in sorted(arguments.items())]
    arrow = f"{source} -> {destination}" + (" (exchange)" if kind == "exchange" else "")
    return f"binding {arrow}" + (f" [{' '.join(rule)}]" if rule else "")


def _settings(entity: str, mine: dict[str, Any], theirs: dict[str, Any]) -> list[Difference]:
    found = [
        Difference(entity, name, mine[name], theirs[name])
        for name in mine
        if name != "arguments" and _canon(mine[name]) != _canon(theirs[name])
    ]
    a, b = mine["arguments"], theirs["arguments"]
    for key in sorted(a.keys() | b.keys()):
        left, right = a.get(key, MISSING), b.get(key, MISSING)
        if left is MISSING or right is MISSING or _canon(left) != _canon(right):
            found.append(
                Difference(entity, f"argument {key!r}", as_management_shows(left), as_management_shows(right))
            )
    return found


def diff_topology(topology: Topology, definitions: Mapping[str, Any], *, vhost: str = "/") -> TopologyDiff:
    """How `topology` compares with the broker `definitions` of `vhost`."""
    wanted = dump_definitions(topology, vhost=None, skip_exclusive=True)
    skipped = tuple(
        f"queue {q.name!r}: exclusive, it exists only while its connection is open"
        for q in topology.queues
        if q.exclusive
    )
    create: list[str] = []
    differ: list[Difference] = []
    extra: list[str] = []

    my_ex, their_ex = _exchanges(wanted["exchanges"]), _exchanges(_items(definitions, "exchanges", vhost))
    for name, mine in my_ex.items():
        label = f"exchange {name!r}"
        if name not in their_ex:
            create.append(f"{label} ({mine['type']})")
        else:
            differ += _settings(label, mine, their_ex[name])
    extra += [f"exchange {n!r} ({their_ex[n]['type']})" for n in sorted(their_ex.keys() - my_ex.keys())]

    my_q, their_q = _queues(wanted["queues"]), _queues(_items(definitions, "queues", vhost))
    for name, mine in my_q.items():
        label = f"queue {name!r}"
        if name not in their_q:
            create.append(label)
        else:
            differ += _settings(label, mine, their_q[name])
    extra += [f"queue {n!r}" for n in sorted(their_q.keys() - my_q.keys())]

    my_b = _bindings(wanted["bindings"], set(my_q))
    their_b = _bindings(_items(definitions, "bindings", vhost), set(their_q))
    create += [label for identity, label in my_b.items() if identity not in their_b]
    extra += sorted(label for identity, label in their_b.items() if identity not in my_b)
    return TopologyDiff(tuple(create), tuple(differ), tuple(extra), skipped)
