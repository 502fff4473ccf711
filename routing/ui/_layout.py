"""A topology as a drawing: nodes in layers from left to right, and the edges between them.

Pure: no I/O, no browser. Exchanges and queues are nodes; bindings, alternate exchanges and
dead-letter exchanges are edges. A node's layer is the longest path to it from a node nothing
points at (edges that would close a cycle, such as a queue dead-lettering back into the exchange
that feeds it, are left out of the ranking, not of the drawing); within a layer, nodes are
ordered by the mean position of their neighbours in the layer before, a few sweeps of the
barycentre heuristic, so that edges cross less. The page draws what this returns as SVG.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from routing.graph import binding_label
from routing.topology import (
    DEFAULT_EXCHANGE,
    DestinationType,
    Topology,
)

__all__ = ["COLUMN", "ROW", "Drawing", "edge_id", "layout", "node_id"]

COLUMN = 430  # px from one layer to the next: a node (220) and room for binding labels
ROW = 58  # px from one node to the next in a layer
_SWEEPS = 4


def node_id(kind: str, name: str) -> str:
    """`exchange:logs`, `queue:logs.pager`: ids the page and the API share."""
    return f"{kind}:{name}"


def edge_id(index: int) -> str:
    """The id of the topology's `index`-th binding (in `Topology.bindings` order)."""
    return f"binding:{index}"


@dataclass(frozen=True, slots=True)
class Drawing:
    """Nodes (`id`, `kind`, `name`, `x`, `y`, and what a label shows) and edges (`id`, `kind`
    binding / alternate / dead-letter, `source`, `target`, `label`), as plain JSON values."""

    nodes: tuple[dict[str, Any], ...]
    edges: tuple[dict[str, Any], ...]
    width: int
    height: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "nodes": list(self.nodes),
            "edges": list(self.edges),
            "width": self.width,
            "height": self.height,
        }


def layout(topology: Topology) -> Drawing:
    """Where each exchange and queue goes, and every edge between them."""
    nodes: dict[str, dict[str, Any]] = {}

    def exchange_node(name: str) -> str:
        ident = node_id("exchange", name)
        if ident not in nodes:
            e = topology.exchange(name)
            assert e is not None  # the topology checked its references
            notes = [] if e.durable else ["transient"]
            notes += ["internal"] if e.internal else []
            notes += ["auto-delete"] if e.auto_delete else []
            builtin = e.name == DEFAULT_EXCHANGE or e.name.startswith("amq.")
            shown = "(default exchange)" if e.name == DEFAULT_EXCHANGE else e.name
            nodes[ident] = {"id": ident, "kind": "exchange", "name": e.name, "label": shown,
                            "type": str(e.type), "notes": notes, "builtin": builtin}  # fmt: skip
        return ident

    for e in topology.exchanges:
        exchange_node(e.name)
    for q in topology.queues:
        notes = ["quorum"] if q.type == "quorum" else []
        notes += ["exclusive"] if q.exclusive else []
        notes += ["auto-delete"] if q.auto_delete else []
        notes += [f"TTL {q.message_ttl} ms"] if q.message_ttl is not None else []
        notes += [f"max {q.max_length}"] if q.max_length is not None else []
        ident = node_id("queue", q.name)
        nodes[ident] = {"id": ident, "kind": "queue", "name": q.name, "label": q.name, "notes": notes}

    edges: list[dict[str, Any]] = []
    for index, b in enumerate(topology.bindings):
        source = exchange_node(b.source)
        is_queue = b.destination_type is DestinationType.QUEUE
        target = node_id("queue", b.destination) if is_queue else exchange_node(b.destination)
        kind = topology.exchange(b.source).type  # type: ignore[union-attr]
        edges.append({"id": edge_id(index), "kind": "binding", "source": source, "target": target,
                      "label": binding_label(kind, b, fanout="(fanout)")})  # fmt: skip
    for e in topology.exchanges:
        if e.alternate_exchange is not None:
            edges.append({"id": f"alternate:{e.name}", "kind": "alternate", "source": node_id("exchange", e.name),
                          "target": exchange_node(e.alternate_exchange), "label": "alternate"})  # fmt: skip
    for q in topology.queues:
        if q.dead_letter_exchange is not None:
            label = "dead letters" + (
                f" as {q.dead_letter_routing_key or chr(34) * 2}"
                if q.dead_letter_routing_key is not None
                else ""
            )
            edges.append({"id": f"dead-letter:{q.name}", "kind": "dead-letter", "source": node_id("queue", q.name),
                          "target": exchange_node(q.dead_letter_exchange), "label": label})  # fmt: skip

    layers = _layers(list(nodes), [(e["source"], e["target"]) for e in edges])
    height = 0
    for depth, layer in enumerate(layers):
        top = 40 + (max(len(x) for x in layers) - len(layer)) * ROW // 2
        for row, ident in enumerate(layer):
            nodes[ident]["x"] = 30 + depth * COLUMN
            nodes[ident]["y"] = top + row * ROW
            height = max(height, nodes[ident]["y"] + ROW)
    width = 30 + max(len(layers), 1) * COLUMN
    return Drawing(tuple(nodes.values()), tuple(edges), width, max(height, 2 * ROW))


def _layers(order: list[str], edges: Iterable[tuple[str, str]]) -> list[list[str]]:
    """The nodes in layers (longest path from a root, cycles broken), each layer ordered by barycentre."""
    succ: dict[str, list[str]] = {n: [] for n in order}
    for a, b in edges:
        if a != b and b not in succ[a]:
            succ[a].append(b)
    incoming = {b for targets in succ.values() for b in targets}
    # Depth-first from the roots (then from whatever a cycle hides), keeping only forward edges.
    kept: dict[str, list[str]] = {n: [] for n in order}
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    finished: list[str] = []
    for start in [n for n in order if n not in incoming] + order:
        if start in state:
            continue
        stack = [(start, iter(succ[start]))]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                finished.append(node)
                stack.pop()
            elif state.get(child) != 1:  # a child on the stack would close a cycle: drop that edge
                kept[node].append(child)
                if child not in state:
                    state[child] = 1
                    stack.append((child, iter(succ[child])))
    depth = dict.fromkeys(order, 0)
    for node in reversed(finished):  # a topological order of the kept edges
        for child in kept[node]:
            depth[child] = max(depth[child], depth[node] + 1)
    layers: list[list[str]] = [[] for _ in range(max(depth.values(), default=0) + 1)]
    for node in order:
        layers[depth[node]].append(node)
    preds: dict[str, list[str]] = {n: [] for n in order}
    for node, targets in kept.items():
        for child in targets:
            preds[child].append(node)
    for _ in range(_SWEEPS):
        for i in range(1, len(layers)):
            _order(layers[i], layers[i - 1], preds)
        for i in range(len(layers) - 2, -1, -1):
            _order(layers[i], layers[i + 1], kept)
    for i in range(1, len(layers)):  # last, forwards: a node sits beside what routes to it
        _order(layers[i], layers[i - 1], preds)
    return layers


def _order(layer: list[str], beside: list[str], neighbours: dict[str, list[str]]) -> None:
    """Sort `layer` by the mean place of each node's neighbours in the layer `beside` (places as
    fractions of each layer's length); a node with none there keeps its own place."""
    where = {n: (k + 0.5) / len(beside) for k, n in enumerate(beside)}
    own = {n: (k + 0.5) / len(layer) for k, n in enumerate(layer)}

    def key(node: str) -> float:
        places = [where[m] for m in neighbours[node] if m in where]
        return sum(places) / len(places) if places else own[node]

    layer.sort(key=key)
