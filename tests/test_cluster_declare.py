"""`routing declare` on a 3-node cluster warns about each durable classic queue (it lives on
one node); on a single node, or without the management API, it says nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cluster_nodes import Cluster, cluster  # noqa: F401  (the fixture)

from routing.cli import main
from routing.definitions import dump_definitions
from routing.topology import Queue, Topology
from routing.transport.rabbitmq import RabbitTransport

pytestmark = [pytest.mark.broker, pytest.mark.slow]

WARNING = "is a classic queue: on a 3-node cluster it lives on one node"


def work(prefix: str) -> Topology:
    return Topology.of(
        Queue(f"{prefix}.orders"),  # durable classic: warned about
        Queue(f"{prefix}.audit", expires=60_000),  # durable classic: warned about
        Queue(f"{prefix}.scratch", auto_delete=True),  # goes with its consumer anyway
        Queue(f"{prefix}.cache", durable=False),  # gone at a restart anyway
        Queue(f"{prefix}.jobs", type="quorum"),  # replicated already
    )


def declare(topology: Topology, url: str, tmp_path: Path) -> Result:
    path = tmp_path / "topology.json"
    path.write_text(json.dumps(dump_definitions(topology)))
    try:
        return CliRunner().invoke(main, ["declare", str(path), "--url", url])
    finally:
        with RabbitTransport(url) as t:
            for q in topology.queues:
                t.delete_queue(q.name)


def warnings(result: Result) -> list[str]:
    """The cluster's warnings (on 4.0 declare also warns of quorum queues' default delivery
    limit: tests/test_targets.py checks those)."""
    return [line for line in result.output.splitlines() if line.startswith("warning:") and WARNING in line]


def cluster_url(nodes: Cluster, management: str | None = None) -> str:
    """All three nodes in one URL, each naming its management API, as `cluster.sh up` prints."""
    return ",".join(nodes.urls(management=management))


def test_a_cluster_gets_one_warning_per_durable_classic_queue(
    cluster: Cluster,  # noqa: F811
    unique: str,
    tmp_path: Path,
) -> None:
    result = declare(work(unique), cluster_url(cluster), tmp_path)
    assert result.exit_code == 0, result.output
    assert "5 created" in result.output
    assert warnings(result) == [
        f"warning: queue '{unique}.audit' {WARNING} and is lost to consumers when that node is down; "
        "use type='quorum' (Topology.replicated())",
        f"warning: queue '{unique}.orders' {WARNING} and is lost to consumers when that node is down; "
        "use type='quorum' (Topology.replicated())",
    ]
    assert result.stderr.count(WARNING) == 2  # on stderr: the report on stdout stays clean


def test_the_replicated_topology_gets_no_warning(cluster: Cluster, unique: str, tmp_path: Path) -> None:  # noqa: F811
    result = declare(work(unique).replicated(), cluster_url(cluster), tmp_path)
    assert result.exit_code == 0, result.output
    assert "5 created" in result.output and warnings(result) == []


def test_no_management_api_no_warning(cluster: Cluster, unique: str, tmp_path: Path) -> None:  # noqa: F811
    """Nothing answers on port 9 (discard): the declare goes on and says nothing about it."""
    result = declare(work(unique), cluster_url(cluster, "http://127.0.0.1:9"), tmp_path)
    assert result.exit_code == 0, result.output
    assert "5 created" in result.output and warnings(result) == []


def test_a_single_node_gets_no_warning(
    amqp_url: str, management_url: str, unique: str, tmp_path: Path
) -> None:
    result = declare(work(unique), amqp_url, tmp_path)
    assert result.exit_code == 0, result.output
    assert "created" in result.output and warnings(result) == []
