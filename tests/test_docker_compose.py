"""docker-compose.yml, read as Compose reads it (no Docker engine here to run it): the single
node and the `cluster` profile run a verified RabbitMQ 4.x with the management plugin, on the
ports the README and `scripts/cluster.sh` give."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
IMAGE = "rabbitmq:4.0-management"  # RabbitMQ 4.0.5 is the 4.x release the broker tests verify


def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def test_every_service_runs_the_verified_4_0_image() -> None:
    services = compose()["services"]
    assert {name: s["image"] for name, s in services.items()} == dict.fromkeys(services, IMAGE)


def test_the_single_node_is_the_default_and_the_cluster_a_profile() -> None:
    services = compose()["services"]
    assert "profiles" not in services["rabbitmq"]
    assert services["rabbitmq"]["ports"] == ["5672:5672", "15672:15672"]
    cluster = {name: s for name, s in services.items() if "cluster" in s.get("profiles", [])}
    assert sorted(cluster) == ["rabbit-1", "rabbit-2", "rabbit-3"]
    for n in (1, 2, 3):
        node = cluster[f"rabbit-{n}"]
        assert node["hostname"] == f"rabbit-{n}"
        assert node["ports"] == [f"{5680 + n}:5672", f"{15680 + n}:15672"]  # as scripts/cluster.sh
        assert node["environment"]["RABBITMQ_ERLANG_COOKIE"]  # one cookie for the three (a YAML anchor)
        assert len({cluster[f"rabbit-{m}"]["environment"]["RABBITMQ_ERLANG_COOKIE"] for m in (1, 2, 3)}) == 1


def test_the_cluster_config_it_mounts_exists_and_names_its_nodes() -> None:
    services = compose()["services"]
    for n in (1, 2, 3):
        [volume] = services[f"rabbit-{n}"]["volumes"]
        source, target, mode = volume.split(":")
        assert (ROOT / source).is_file() and target.startswith("/etc/rabbitmq/conf.d/") and mode == "ro"
        nodes = re.findall(r"classic_config\.nodes\.\d+ = (\S+)", (ROOT / source).read_text())
        assert nodes == ["rabbit@rabbit-1", "rabbit@rabbit-2", "rabbit@rabbit-3"]
