"""What a topology risks on a multi-node RabbitMQ cluster: a classic queue lives on one node.

On a cluster, a classic queue's messages are on the node that declared it; while that node
is down its consumers get nothing and publishes to it are dropped. A quorum queue is
replicated on the nodes and keeps working while a majority runs (`Topology.replicated()`).
"""

from __future__ import annotations

from dataclasses import replace

from routing.errors import RoutingError
from routing.management import Management
from routing.topology import Topology

__all__ = ["NODES_TIMEOUT", "cluster_warnings", "single_node_queues"]


NODES_TIMEOUT = 2.0  # seconds: the warning is advice, not worth a long wait


def single_node_queues(topology: Topology, nodes: int) -> list[str]:
    """One warning line per durable classic queue of `topology` on a cluster of `nodes`
    nodes; none on a single node."""
    if nodes < 2:
        return []
    return [
        f"warning: queue {q.name!r} is a classic queue: on a {nodes}-node cluster it lives on one node "
        "and is lost to consumers when that node is down; use type='quorum' (Topology.replicated())"
        for q in topology.queues
        if q.replicable
    ]


def cluster_warnings(topology: Topology, management: Management) -> list[str]:
    """`single_node_queues` for the broker behind `management`, sized by `GET /api/nodes`.
    Nothing when the management API cannot say (not enabled, unreachable, refused)."""
    try:
        nodes = replace(management, timeout=min(management.timeout, NODES_TIMEOUT)).nodes()
    except RoutingError:
        return []
    return single_node_queues(topology, len(nodes))
