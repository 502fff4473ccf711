"""The local 3-node cluster of `scripts/cluster.sh`, for tests: the `cluster` fixture and
the operations tests need (stop and start a node, ask who leads a quorum queue).

The fixture runs `scripts/cluster.sh up` (~45 s on 2 cores; nothing when the cluster is
already up) and, at the end of the session, `down` only if it was not fully up before: a
cluster a developer started stays up. Every test module that imports it shares one cluster.

The cluster runs the broker under test's release: the host's binaries for 3.x
(`rabbit-cluster-N@localhost`, ports 568N), the 4.0 chroot for 4.x
(`ROUTING_CLUSTER_ROOT`: `rabbit4-cluster-N@localhost`, ports 569N), as `cluster.sh` names them.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from rabbit_node import CHROOT_BIN, _script, _unavailable, release_root

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "cluster.sh"
NODES = (1, 2, 3)


@dataclass(frozen=True)
class Layout:
    """How `cluster.sh` names the nodes of one release's cluster, and the environment it needs."""

    name: str  # node N is NAME-N@localhost
    port_base: int  # AMQP PORT_BASE + N, management + 10000, distribution + 20000
    root: Path | None = None  # the chroot its nodes run in

    @property
    def env(self) -> dict[str, str]:
        if self.root is None:
            return {}
        return {"ROUTING_CLUSTER_ROOT": str(self.root)}


@functools.cache
def layout() -> Layout:
    root = release_root()
    return Layout("rabbit-cluster", 5680) if root is None else Layout("rabbit4-cluster", 5690, root)


def node_url(node: int, management: str | None = None) -> str:
    """Node `node`'s AMQP URL, naming its management API as `cluster.sh urls` does."""
    port = layout().port_base + node
    return f"amqp://guest:guest@127.0.0.1:{port}/%2F?management={management or management_url(node)}"


def management_url(node: int) -> str:
    return f"http://127.0.0.1:{layout().port_base + 10000 + node}"


def node_of(name_or_port: str | int) -> int:
    """1-3 from a node name (`rabbit-cluster-2@localhost`) or an AMQP port (5682)."""
    if isinstance(name_or_port, int):
        return name_or_port - layout().port_base
    found = re.search(rf"{layout().name}-(\d)@", name_or_port)
    if found is None:
        raise ValueError(f"not a cluster node: {name_or_port!r}")
    return int(found.group(1))


def _node_names(text: str) -> list[str]:
    return re.findall(rf"{layout().name}-\d@\w+", text)


def cluster_script(*args: str, timeout: float = 300) -> str:
    done = subprocess.run(
        ["bash", str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **layout().env},
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"scripts/cluster.sh {' '.join(args)} exited {done.returncode}: {done.stderr.strip() or done.stdout}"
        )
    return done.stdout


@dataclass
class Cluster:
    """The running cluster; `up_seconds` is how long `up` took (0 when it was already up)."""

    up_seconds: float = 0.0
    was_up: bool = False
    log: list[str] = field(default_factory=list)
    stopped: set[int] = field(default_factory=set)  # by stop_node, not started again yet

    def urls(self, *order: int, management: str | None = None) -> list[str]:
        """AMQP URLs of the nodes, in the order to try them (default 1, 2, 3); `management`
        replaces each node's management API URL."""
        return [node_url(n, management) for n in order or NODES]

    def ctl(self, node: int, *args: str, timeout: float = 60) -> str:
        return cluster_script("ctl", str(node), *args, timeout=timeout)

    def stop_node(self, node: int) -> None:
        """`rabbitmqctl stop_app`: RabbitMQ stops (its clients are disconnected), the VM stays."""
        self.stopped.add(node)
        self.log.append(cluster_script("stop-node", str(node), timeout=120).strip())

    def start_node(self, node: int) -> None:
        """`start_app`, then wait until the node has booted and rejoined."""
        self.log.append(cluster_script("start-node", str(node), timeout=180).strip())
        self.stopped.discard(node)

    def heal(self) -> None:
        """Start what a failed test left stopped, so the next test finds three nodes."""
        if self.stopped:
            cluster_script("up")
            self.stopped.clear()

    def running_nodes(self, ask: int = 1) -> set[int]:
        out = self.ctl(ask, "cluster_status", "--formatter", "json")
        match = re.search(r'"running_nodes":\[([^\]]*)\]', out.replace(" ", "").replace("\n", ""))
        return {node_of(name) for name in _node_names(match.group(1))} if match else set()

    def queue_info(self, queue: str, ask: int = 1) -> tuple[int, set[int]]:
        """(leader, online members) of a quorum queue."""
        self.ctl(ask, "await_startup")  # a node restarted a moment ago may list itself before it boots
        out = self.ctl(ask, "list_queues", "name", "leader", "online", "--quiet", "--no-table-headers")
        for line in out.splitlines():
            name, leader, online = line.split("\t")
            if name == queue:
                return node_of(leader), {node_of(n) for n in _node_names(online)}
        raise AssertionError(f"queue {queue!r} not on the cluster: {out}")

    def wait_running(self, nodes: set[int], ask: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while (running := self.running_nodes(ask)) != nodes:
            if time.monotonic() > deadline:
                raise AssertionError(f"cluster runs {sorted(running)}, not {sorted(nodes)}, after {timeout}s")
            time.sleep(1)
        # 4.0 lists a node among the running ones while its rabbit app is still booting.
        for node in nodes:
            self.ctl(node, "await_startup")


_SHARED: list[Cluster] = []


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """The 3-node cluster, up. Started if needed; stopped at the end only if this started it."""
    if _SHARED:  # another module imported this fixture: one cluster per session
        yield _SHARED[0]
        return
    root = layout().root
    if root is None and (_script("rabbitmq-server") is None or _script("rabbitmqctl") is None):
        _unavailable("rabbitmq-server is not installed: cannot start a local cluster")
    if root is not None and not (root / CHROOT_BIN.lstrip("/") / "rabbitmq-server").exists():
        _unavailable(f"no RabbitMQ 4 chroot at {root}: run `sudo scripts/rabbitmq4.sh up`")
    status = subprocess.run(
        ["bash", str(SCRIPT), "status"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **layout().env},
    )
    started = time.monotonic()
    try:
        cluster_script("up")
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"the local cluster did not come up: {exc}", pytrace=False)
    state = Cluster(up_seconds=round(time.monotonic() - started, 1), was_up=status.returncode == 0)
    _SHARED.append(state)
    try:
        yield state
    finally:
        _SHARED.clear()
        if state.was_up:
            cluster_script("up")  # every node running again, as it was found
        else:
            cluster_script("down")
