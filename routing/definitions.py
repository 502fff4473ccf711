"""RabbitMQ's definitions format, read into a `Topology` and written back.

Three flavours are read, as RabbitMQ 3.10 writes them:

- the management plugin's `GET /api/definitions`: every item carries its `vhost`;
- `GET /api/definitions/{vhost}`: the same items without `vhost`;
- `rabbitmqctl export_definitions -`: queues also get a `type` field, exchanges lose
  `internal`, and internal exchanges are left out (their bindings are not).

Users, permissions, policies, parameters and the rest are ignored: a topology is exchanges,
queues and bindings. The default exchange and the `amq.*` exchanges exist in every vhost, so
they are skipped when listed, and bindings from the default exchange are implicit.

Exclusive queues belong to one connection and RabbitMQ never exports them, so a topology
with one cannot be written as definitions: `dump_definitions` refuses it, or with
`skip_exclusive=True` leaves it and its bindings out.

AMQP void (`None`, e.g. "header present" in a headers binding) has no faithful spelling in
this format on 3.10: the export writes it as the string `"undefined"`, and the import refuses
`null` (400 `null_not_allowed`). `load_definitions` reads both `null` and `"undefined"` as
`None` (unless `undefined_is_void=False`); `dump_definitions` writes `null`, so a round trip
through our own files is lossless, but RabbitMQ's import refuses such a file rather than
silently turning "present" into the string "undefined". `void_arguments()` names the values,
so that such a topology can be declared over AMQP instead.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import Any

from routing._frozen import thaw
from routing._json import parse_json
from routing.errors import DefinitionsError, TopologyError
from routing.topology import (
    DEFAULT_EXCHANGE,
    Binding,
    Exchange,
    Queue,
    Topology,
)

__all__ = [
    "Source",
    "dump_definitions",
    "file_vhost",
    "load_definitions",
    "read_definitions",
    "void_arguments",
]


Source = Mapping[str, Any] | str | os.PathLike[str]

_SECTIONS = ("exchanges", "queues", "bindings")


def read_definitions(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON object in a definitions file; `DefinitionsError` naming the file otherwise."""
    shown = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = parse_json(f.read())
    except FileNotFoundError:
        raise DefinitionsError(f"{shown}: no such file") from None
    except IsADirectoryError:
        raise DefinitionsError(f"{shown}: is a directory, not a definitions file") from None
    except UnicodeDecodeError as exc:
        raise DefinitionsError(f"{shown}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise DefinitionsError(
            f"{shown}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    except ValueError as exc:  # an integer of more digits than Python converts (4,300)
        raise DefinitionsError(f"{shown}: not usable JSON ({exc})") from None
    except RecursionError:
        raise DefinitionsError(f"{shown}: JSON nested too deeply") from None
    except OSError as exc:
        raise DefinitionsError(f"{shown}: cannot be read ({exc.strerror})") from None

    if not isinstance(data, dict):
        raise DefinitionsError(
            f"{shown}: a definitions file is a JSON object with exchanges, queues and bindings,"
            f" not a {type(data).__name__}"
        )
    return data


def _lone_surrogate(value: Any, path: str = "") -> str | None:
    """Where in a JSON document a string holds a lone surrogate (`"\\ud800"` parses to one and
    cannot be encoded as UTF-8), or None."""
    if isinstance(value, str):
        return None if value.isascii() or _encodes(value) else path or "(top)"
    if isinstance(value, dict):
        for key, item in value.items():
            inner = f"{path}.{key}" if path else str(key)
            if not _encodes(str(key)):
                return (path or "(top)") + ": a key"
            found = _lone_surrogate(item, inner)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _lone_surrogate(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def file_vhost(data: Mapping[str, Any]) -> str | None:
    """The one vhost every item of a definitions document names, or None (none or several)."""
    named = {
        item.get("vhost") for name in _SECTIONS for item in data.get(name) or [] if isinstance(item, dict)
    }
    named.discard(None)
    return named.pop() if len(named) == 1 and isinstance(next(iter(named)), str) else None


def load_definitions(data: Source, *, vhost: str | None = None, undefined_is_void: bool = True) -> Topology:
    """The exchanges, queues and bindings of `vhost` in a definitions file or dict.

    Without `vhost`, the one vhost the items name (a file exported from vhost `shop` is read
    for `shop`), else `/`. Items without a `vhost` field (a per-vhost export) are taken as the
    vhost's own. Argument values `"undefined"` are read as void (`None`), as RabbitMQ exports void.
    """
    if isinstance(data, str | os.PathLike):
        origin = os.fspath(data)
        data = read_definitions(data)
    else:
        origin = "definitions"
        if not isinstance(data, Mapping):
            raise DefinitionsError(f"definitions must be a JSON object, not a {type(data).__name__}")
    try:
        where = _lone_surrogate(data)
    except RecursionError:
        raise DefinitionsError(f"{origin}: nested too deeply") from None
    if where is not None:
        raise DefinitionsError(
            f"{origin}: {where}: not Unicode text (a lone surrogate, as \\udcff writes one);"
            " RabbitMQ names are UTF-8"
        )
    sections = {name: _section(origin, data, name) for name in _SECTIONS}
    if vhost is None:
        vhost = file_vhost(data) or "/"
    chosen = {
        name: [(i, item) for i, item in items if _in_vhost(item, vhost)] for name, items in sections.items()
    }
    if not any(chosen.values()) and any(sections.values()):
        others = sorted({str(item.get("vhost")) for items in sections.values() for _, item in items})
        raise DefinitionsError(
            f"{origin}: nothing in vhost {vhost!r}; the file has vhost {', '.join(map(repr, others))}:"
            " choose one with --vhost (vhost= in Python)"
        )
    entities: list[Exchange | Queue | Binding] = []
    for name, parse in _PARSERS.items():
        for index, item in chosen[name]:
            if undefined_is_void and isinstance(item.get("arguments"), dict):
                item = {**item, "arguments": _void(item["arguments"])}
            try:
                entity = parse(item)
            except TopologyError as exc:
                raise DefinitionsError(f"{origin}: {name}[{index}]: {exc}") from exc
            if entity is not None:
                entities.append(entity)
    try:
        return Topology.of(entities)
    except TopologyError as exc:
        raise DefinitionsError(f"{origin}: {exc}{_hint(data, exc)}") from exc


def dump_definitions(
    topology: Topology, *, vhost: str | None = "/", skip_exclusive: bool = False
) -> dict[str, Any]:
    """A definitions dict for `topology`, as `POST /api/definitions` accepts it.

    With `vhost=None` items carry no `vhost`, for `POST /api/definitions/{vhost}`.
    Exclusive queues cannot be exported (see the module docstring): `DefinitionsError`,
    unless `skip_exclusive` leaves them and their bindings out.
    """
    exclusive = {q.name for q in topology.queues if q.exclusive}
    if exclusive and not skip_exclusive:
        names = ", ".join(map(repr, sorted(exclusive)))
        raise DefinitionsError(
            f"queue {names} is exclusive: exclusive queues belong to one connection and cannot be"
            " in definitions; make it non-exclusive, or skip it (skip_exclusive=True, --skip-exclusive)"
        )
    where = {} if vhost is None else {"vhost": vhost}
    exchanges = [
        {
            "name": e.name,
            **where,
            "type": str(e.type),
            "durable": e.durable,
            "auto_delete": e.auto_delete,
            "internal": e.internal,
            "arguments": e.declare_arguments,
        }
        for e in topology.exchanges
    ]
    queues = [
        {
            "name": q.name,
            **where,
            "durable": q.durable,
            "auto_delete": q.auto_delete,
            "arguments": q.declare_arguments,
        }
        for q in topology.queues
        if q.name not in exclusive
    ]
    bindings = [
        {
            "source": b.source,
            **where,
            "destination": b.destination,
            "destination_type": str(b.destination_type),
            "routing_key": b.routing_key,
            "arguments": thaw(b.arguments),
        }
        for b in topology.bindings
        if not (b.destination_type == "queue" and b.destination in exclusive)
    ]
    return {"exchanges": exchanges, "queues": queues, "bindings": bindings}


def void_arguments(topology: Topology) -> list[str]:
    """One line per void (`None`) argument value: RabbitMQ's definitions import refuses them."""
    found = []
    for e in topology.exchanges:
        found += [f"exchange {e.name!r} argument {k!r}" for k in _void_keys(e.arguments)]
    for q in topology.queues:
        found += [f"queue {q.name!r} argument {k!r}" for k in _void_keys(q.arguments)]
    for b in topology.bindings:
        found += [
            f"binding {b.source!r} -> {b.destination!r} argument {k!r}" for k in _void_keys(b.arguments)
        ]
    return found


def _void_keys(arguments: Mapping[str, Any]) -> list[str]:
    def has_void(value: Any) -> bool:
        if isinstance(value, Mapping):
            return any(has_void(v) for v in value.values())
        if isinstance(value, tuple | list):
            return any(has_void(v) for v in value)
        return value is None

    return [k for k, v in arguments.items() if has_void(v)]


# ------------------------------------------------------------ reading items


def _void(value: Any) -> Any:
    """RabbitMQ 3.10 exports AMQP void as the string "undefined": read it back as None."""
    if isinstance(value, dict):
        return {k: _void(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_void(v) for v in value]
    return None if value == "undefined" else value


def _section(origin: str, data: Mapping[str, Any], name: str) -> list[tuple[int, dict[str, Any]]]:
    items = data.get(name, [])
    if not isinstance(items, list):
        raise DefinitionsError(f"{origin}: {name!r} must be a list, not a {type(items).__name__}")
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise DefinitionsError(f"{origin}: {name}[{i}] must be an object, not {json.dumps(item)[:60]}")
    return list(enumerate(items))


def _in_vhost(item: Mapping[str, object], vhost: str) -> bool:
    return item.get("vhost", vhost) == vhost


def _field(item: Mapping[str, Any], key: str, kind: type, default: Any = None) -> Any:
    if key not in item:
        if default is None:
            raise TopologyError(f"{_label(item)}: {key!r} is missing")
        return default
    value = item[key]
    if not isinstance(value, kind):
        raise TopologyError(f"{_label(item)}: {key!r} must be a {kind.__name__}, got {json.dumps(value)}")
    return value


def _label(item: Mapping[str, Any]) -> str:
    if "source" in item or "destination" in item:
        return f"binding {item.get('source')!r} -> {item.get('destination')!r}"
    return repr(item.get("name", "(no name)"))


def _exchange(item: Mapping[str, Any]) -> Exchange | None:
    name = _field(item, "name", str)
    if name == DEFAULT_EXCHANGE or name.startswith("amq."):
        return None  # every vhost has these; they cannot be declared
    return Exchange(
        name,
        _field(item, "type", str),
        durable=_field(item, "durable", bool, True),
        auto_delete=_field(item, "auto_delete", bool, False),
        internal=_field(item, "internal", bool, False),
        arguments=_field(item, "arguments", dict, {}),
    )


def _queue(item: Mapping[str, Any]) -> Queue:
    name = _field(item, "name", str)
    arguments = dict(_field(item, "arguments", dict, {}))
    # rabbitmqctl writes the type beside the arguments as well as in them.
    if "type" in item:
        kind = _field(item, "type", str)
        given = arguments.setdefault("x-queue-type", kind)
        if given != kind:
            raise TopologyError(f"queue {name!r}: type {kind!r} and x-queue-type {given!r} disagree")
    return Queue(
        name,
        durable=_field(item, "durable", bool, True),
        auto_delete=_field(item, "auto_delete", bool, False),
        arguments=arguments,
    )


def _binding(item: Mapping[str, Any]) -> Binding | None:
    source = _field(item, "source", str)
    if source == DEFAULT_EXCHANGE:
        return None  # the default exchange's bindings are implicit
    return Binding(
        source,
        _field(item, "destination", str),
        _field(item, "routing_key", str, ""),
        destination_type=_field(item, "destination_type", str, "queue"),
        arguments=_field(item, "arguments", dict, {}),
    )


_PARSERS: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "exchanges": _exchange,
    "queues": _queue,
    "bindings": _binding,
}


def _hint(data: Mapping[str, Any], exc: TopologyError) -> str:
    """rabbitmqctl 3.10 drops internal exchanges but keeps their bindings: say so."""
    ctl_export = any("type" in q for q in data.get("queues", []) if isinstance(q, dict))
    if ctl_export and "no exchange" in str(exc):
        return (
            " (rabbitmqctl export_definitions on 3.10 leaves internal exchanges out;"
            " export with the management API, GET /api/definitions)"
        )
    return ""
