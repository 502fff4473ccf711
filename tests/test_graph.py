"""The Mermaid diagram of a topology (routing.graph).

Syntax was checked against Mermaid 11's own parser (`mermaid.parse` under jsdom) on 1,000
generated topologies; these tests pin the structure that check relied on: every line is a
node, an edge, or a style line; ids are generated and declared once; labels hold no raw `"`
and unescape to the entity names.
"""

from __future__ import annotations

import re
import runpy
from pathlib import Path

from hypothesis import given, settings
from strategies import topologies

from routing import Binding, Exchange, Queue, Topology
from routing.graph import escape, markdown, mermaid

shop: Topology = runpy.run_path(str(Path(__file__).parents[1] / "examples" / "shop_topology.py"))["topology"]

_SHAPE = r'(?P<open>\{\{|\[/|\[\\|\[\()"(?P<label>[^"]*)"(?P<close>\}\}|/\]|\\\]|\)\])'
NODE = re.compile(rf"    (?P<id>[EQB]\d+){_SHAPE}")
EDGE = re.compile(
    r'    (?P<src>[EQB]\d+) (?P<arrow>-->|==>|-\.->)(?:\|"(?P<label>[^"]*)"\|)? (?P<dst>[EQB]\d+)'
)
STYLE = re.compile(r"    (classDef \w+ [\w:#,. -]+|class [EQB]\d+(,[EQB]\d+)* \w+)")


def unescape(label: str) -> str:
    return re.sub(r"#(\d+);", lambda m: chr(int(m.group(1))), label)


def parse(diagram: str) -> tuple[dict[str, tuple[str, str]], list[tuple[str, str, str, str | None]]]:
    """Nodes (id -> shape, label) and edges (source, arrow, target, label); fails on any other line."""
    lines = diagram.splitlines()
    assert lines[0] == "flowchart LR"
    nodes: dict[str, tuple[str, str]] = {}
    edges = []
    for line in lines[1:]:
        if node := NODE.fullmatch(line):
            assert node["id"] not in nodes, f"node declared twice: {line}"
            nodes[node["id"]] = (node["open"] + node["close"], node["label"])
        elif edge := EDGE.fullmatch(line):
            edges.append((edge["src"], edge["arrow"], edge["dst"], edge["label"]))
        else:
            assert STYLE.fullmatch(line), f"not a node, edge or style line: {line!r}"
    for source, _, target, _ in edges:
        assert source in nodes and target in nodes, "edges only join declared nodes"
    return nodes, edges


def by_name(nodes: dict[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """First line of each label (the entity's name) -> (id, shape)."""
    return {unescape(label.split("<br/>")[0]): (node, shape) for node, (shape, label) in nodes.items()}


def test_shop_diagram_shapes_labels_and_edges() -> None:
    nodes, edges = parse(mermaid(shop))
    named = by_name(nodes)
    assert named["shop.events"][1] == "[//]"  # topic: parallelogram
    assert named["shop.unrouted"][1] == "[/\\]"  # fanout: trapezoid
    assert named["shop.audit"][1] == "[\\/]"  # headers: inverted trapezoid
    assert named["shop.dlx"][1] == "{{}}"  # direct: hexagon
    assert all(named[q.name][1] == "[()]" for q in shop.queues)  # queues: cylinders
    labels = {unescape(label) for _, (_, label) in nodes.items()}
    assert "shop.audit<br/>headers exchange, internal" in labels
    assert "orders.created<br/>quorum, DLX" in labels
    assert "billing<br/>TTL 1 min, max 1000" in labels

    ids = {name: node for name, (node, _) in named.items()}
    shown = {(s, a, t, unescape(label) if label else None) for s, a, t, label in edges}
    assert (ids["shop.events"], "-->", ids["orders.created"], "order.created") in shown
    assert (ids["shop.events"], "==>", ids["shop.audit"], "order.#") in shown  # exchange to exchange
    assert (ids["shop.audit"], "-->", ids["audit.eu"], 'x-match all: region="eu"') in shown
    assert (ids["shop.audit"], "-->", ids["audit.big-orders"], "x-match any: big=true, priority=9") in shown
    assert (ids["shop.unrouted"], "-->", ids["unrouted"], None) in shown  # fanout: no key to show
    assert (ids["shop.events"], "-.->", ids["shop.unrouted"], "alternate") in shown
    assert (ids["orders.created"], "-.->", ids["shop.dlx"], "dead letters as orders.created") in shown
    assert len(edges) == len(shop.bindings) + 2


def test_names_with_quotes_markup_and_newlines_are_escaped() -> None:
    odd = 'say "hi" <b>#x; `md`\nnext'
    ex, q = Exchange(odd, "direct"), Queue(odd)  # one name, two namespaces: two nodes
    nodes, edges = parse(mermaid(Topology.of(ex, q, ex.bind(q, odd))))
    assert len(nodes) == 2
    raw = "|".join(label for _, label in nodes.values())
    assert "<b>" not in raw and "#x;" not in raw and "\n" not in raw
    assert sorted(unescape(label).split("<br/>")[0] for _, label in nodes.values()) == [odd, odd]
    assert unescape(edges[0][3] or "") == odd


def test_escape_keeps_readable_text_and_codes_only_what_mermaid_would_misread() -> None:
    assert escape("order.#") == "order.#"
    assert escape("café 日本 (x) [y]") == "café 日本 (x) [y]"
    assert escape('a"b') == "a#34;b"
    assert escape("#quot;") == "#35;quot;"  # would otherwise render as a quote
    assert escape("a&b<c>") == "a#38;b#60;c#62;"


def test_builtin_and_default_exchanges_appear_when_used() -> None:
    q = Queue("q", dead_letter_exchange="", dead_letter_routing_key="retry")
    topology = Topology.of(q, Binding("amq.topic", "q", "a.#"))
    nodes, edges = parse(mermaid(topology))
    named = by_name(nodes)
    assert named["(default exchange)"][0].startswith("B")
    assert named["amq.topic"][0].startswith("B")
    assert (named["q"][0], "-.->", named["(default exchange)"][0], "dead letters as retry") in {
        (s, a, t, unescape(label) if label else None) for s, a, t, label in edges
    }
    assert "class B0,B1 builtin" in mermaid(topology)


def test_empty_topology_and_markdown_fence() -> None:
    nodes, edges = parse(mermaid(Topology()))
    assert nodes == {} and edges == []
    fenced = markdown(shop)
    assert fenced.startswith("```mermaid\nflowchart LR\n")
    assert fenced.endswith("\n```\n")
    assert fenced[len("```mermaid\n") : -len("```\n")] == mermaid(shop)


@settings(max_examples=200)
@given(topologies())
def test_every_generated_topology_gives_a_well_formed_diagram(topology: Topology) -> None:
    nodes, edges = parse(mermaid(topology))
    named = by_name(nodes)
    for e in topology.exchanges:
        assert e.name in named
    for q in topology.queues:
        assert q.name in named
    dotted = sum(e.alternate_exchange is not None for e in topology.exchanges) + sum(
        q.dead_letter_exchange is not None for q in topology.queues
    )
    assert len(edges) == len(topology.bindings) + dotted
    assert sum(arrow == "-.->" for _, arrow, _, _ in edges) == dotted
    assert sum(arrow == "==>" for _, arrow, _, _ in edges) == sum(
        b.destination_type == "exchange" for b in topology.bindings
    )
