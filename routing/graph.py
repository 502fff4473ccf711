"""A topology as a Mermaid flowchart, for READMEs and reviews.

Exchanges get one shape per type, queues are cylinders. Solid arrows are bindings labelled
with their key or header rule (thick when exchange-to-exchange); dotted arrows are where
messages go when nothing matched (alternate exchange) or when a queue dead-letters.

Entity names may hold anything RabbitMQ allows (dots, spaces, quotes, unicode), so node ids
are generated (`E0`, `Q0`, ...) and every name is written as an entity-escaped quoted label.
"""

from __future__ import annotations

import json
import re
from typing import Any

from routing._frozen import thaw
from routing.topology import (
    DEFAULT_EXCHANGE,
    Binding,
    DestinationType,
    Exchange,
    ExchangeType,
    Queue,
    QueueType,
    Topology,
)

__all__ = ["binding_label", "escape", "markdown", "mermaid"]

# Mermaid shape brackets per exchange type: hexagon, trapezoid, parallelogram, inverted trapezoid.
_SHAPES = {
    ExchangeType.DIRECT: ("{{", "}}"),
    ExchangeType.FANOUT: ("[/", "\\]"),
    ExchangeType.TOPIC: ("[/", "/]"),
    ExchangeType.HEADERS: ("[\\", "/]"),
}
_QUEUE_SHAPE = ("[(", ")]")

# Inside a quoted label only `"` breaks the syntax, but `#name;` is read as an entity code,
# `<`/`&` as HTML and a leading backtick as a markdown string. Those are written as entity
# codes (`#34;` is `"`), which Mermaid turns back into the character when it renders.
_ESCAPED = frozenset('"&<>`')
_ENTITY = re.compile(r"#\w*;")

_STYLE = (
    "classDef exchange fill:#e8f0fe,stroke:#3367d6",
    "classDef queue fill:#fef7e0,stroke:#b06000",
    "classDef builtin fill:#f1f3f4,stroke:#80868b,stroke-dasharray:4 3",
)


def escape(text: str) -> str:
    """`text` safe inside a double-quoted Mermaid label."""
    out = []
    for i, c in enumerate(text):
        code = c in _ESCAPED or not c.isprintable() or (c == "#" and _ENTITY.match(text, i))
        out.append(f"#{ord(c)};" if code else c)
    return "".join(out)


def mermaid(topology: Topology) -> str:
    """A `flowchart LR` of the topology's exchanges, queues and bindings."""
    ids: dict[tuple[str, str], str] = {}
    lines = ["flowchart LR"]
    classes: dict[str, list[str]] = {"exchange": [], "queue": [], "builtin": []}

    for i, e in enumerate(topology.exchanges):
        ids["exchange", e.name] = node = f"E{i}"
        lines.append(f"    {_exchange_node(node, e)}")
        classes["exchange"].append(node)
    for i, q in enumerate(topology.queues):
        ids["queue", q.name] = node = f"Q{i}"
        opened, closed = _QUEUE_SHAPE
        lines.append(f'    {node}{opened}"{_queue_label(q)}"{closed}')
        classes["queue"].append(node)

    def exchange_id(name: str) -> str:
        """The node of an exchange, adding the built-in ones (`""`, `amq.*`) when first used."""
        node = ids.get(("exchange", name))
        if node is None:
            ids["exchange", name] = node = f"B{len(classes['builtin'])}"
            builtin = topology.exchange(name)
            assert builtin is not None  # the topology checked its references
            lines.append(f"    {_exchange_node(node, builtin)}")
            classes["builtin"].append(node)
        return node

    edges = []
    for b in topology.bindings:
        source = exchange_id(b.source)
        if b.destination_type is DestinationType.EXCHANGE:
            target, arrow = exchange_id(b.destination), "==>"
        else:
            target, arrow = ids["queue", b.destination], "-->"
        kind = topology.exchange(b.source).type  # type: ignore[union-attr]
        label = binding_label(kind, b)
        edges.append(
            f'{source} {arrow}|"{escape(label)}"| {target}' if label else f"{source} {arrow} {target}"
        )
    for e in topology.exchanges:
        if e.alternate_exchange is not None:
            target = exchange_id(e.alternate_exchange)
            edges.append(f'{ids["exchange", e.name]} -.->|"alternate"| {target}')
    for q in topology.queues:
        if q.dead_letter_exchange is not None:
            label = "dead letters"
            if q.dead_letter_routing_key is not None:
                label += f" as {_key(q.dead_letter_routing_key)}"
            target = exchange_id(q.dead_letter_exchange)
            edges.append(f'{ids["queue", q.name]} -.->|"{escape(label)}"| {target}')

    lines += [f"    {edge}" for edge in edges]
    lines += [f"    {style}" for style in _STYLE]
    lines += [f"    class {','.join(nodes)} {name}" for name, nodes in classes.items() if nodes]
    return "\n".join(lines) + "\n"


def markdown(topology: Topology) -> str:
    """The diagram in a ```` ```mermaid ```` fence, ready to paste into a README."""
    return f"```mermaid\n{mermaid(topology)}```\n"


def _exchange_node(node: str, e: Exchange) -> str:
    opened, closed = _SHAPES[e.type]
    name = "(default exchange)" if e.name == DEFAULT_EXCHANGE else escape(e.name)
    notes = [f"{e.type} exchange"]
    if e.internal:
        notes.append("internal")
    if not e.durable:
        notes.append("transient")
    if e.auto_delete:
        notes.append("auto-delete")
    return f'{node}{opened}"{name}<br/>{escape(", ".join(notes))}"{closed}'


def _queue_label(q: Queue) -> str:
    notes = []
    if q.type is QueueType.QUORUM:
        notes.append("quorum")
    if q.exclusive:
        notes.append("exclusive")
    if not q.durable:
        notes.append("transient")
    if q.auto_delete:
        notes.append("auto-delete")
    if q.message_ttl is not None:
        notes.append(f"TTL {_duration(q.message_ttl)}")
    if q.max_length is not None:
        notes.append(f"max {q.max_length}")
    if q.dead_letter_exchange is not None:
        notes.append("DLX")
    label = escape(q.name)
    return f"{label}<br/>{escape(', '.join(notes))}" if notes else label


def _duration(ms: int) -> str:
    for unit, size in (("h", 3_600_000), ("min", 60_000), ("s", 1000)):
        if ms >= size and ms % size == 0:
            return f"{ms // size} {unit}"
    return f"{ms} ms"


def _key(key: str) -> str:
    return key if key else "(empty key)"


def _value(value: Any) -> str:
    return json.dumps(thaw(value), ensure_ascii=False)


def binding_label(kind: ExchangeType, b: Binding, *, fanout: str = "") -> str:
    """The binding key, or for a headers exchange the rule: `x-match any: big=true, n=1`;
    `fanout` for a fanout exchange's (whose key means nothing). The graphs and `routing ui`
    label bindings with it."""
    if kind is ExchangeType.HEADERS:
        mode = b.arguments.get("x-match", "all")
        pairs = [
            f"{k} present" if v is None else f"{k}={_value(v)}"
            for k, v in b.arguments.items()
            if k != "x-match"
        ]
        return f"x-match {mode}" + (f": {', '.join(pairs)}" if pairs else "")
    label = fanout if kind is ExchangeType.FANOUT else _key(b.routing_key)
    if b.arguments:
        label = f"{label} {_value(b.arguments)}".strip()
    return label
