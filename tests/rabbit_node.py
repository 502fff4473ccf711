"""A private RabbitMQ node for tests that break connections or restart the broker.

The shared broker on 5672 is never touched: this node has its own name, ports, data and
log directories, config file, cookie (its own HOME) and an empty plugin list. Use the
`rabbit_node` fixture (module-scoped; ~5 s to start), or `RabbitNode` directly:

    with RabbitNode.start() as node:
        node.close_all_connections()
        node.restart_app()

Later tests (TLS, clusters) can pass `config=` lines (e.g. `listeners.ssl.default = ...`).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# Call the real scripts, not the /usr/sbin wrappers that switch to the `rabbitmq` user
# (which would read the shared node's cookie and config).
SBIN_CANDIDATES = ("/usr/lib/rabbitmq/bin", "/usr/local/sbin", "/usr/sbin", "/opt/rabbitmq/sbin")


def _script(name: str) -> str | None:
    for base in SBIN_CANDIDATES:
        path = Path(base) / name
        if path.exists():
            return str(path)
    return shutil.which(name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RabbitNode:
    """One private node: `url`, `nodename`, and the `rabbitmqctl` operations tests need."""

    def __init__(self, base: Path, port: int, dist_port: int, config: list[str]) -> None:
        self.base = base
        self.port = port
        self.dist_port = dist_port
        self.nodename = f"routing-test-{uuid.uuid4().hex[:8]}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{port}/%2F"
        (base / "home").mkdir(parents=True)
        (base / "enabled_plugins").write_text("[].\n")
        (base / "rabbitmq-env.conf").write_text("")
        lines = [f"listeners.tcp.default = 127.0.0.1:{port}", "loopback_users = none", *config]
        (base / "rabbitmq.conf").write_text("\n".join(lines) + "\n")
        self.env = {
            **os.environ,
            "HOME": str(base / "home"),  # its own Erlang cookie
            "RABBITMQ_NODENAME": self.nodename,
            "RABBITMQ_NODE_PORT": str(port),
            "RABBITMQ_DIST_PORT": str(dist_port),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_PID_FILE": str(base / "pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(base / "plugins-expand"),
            "RABBITMQ_FEATURE_FLAGS_FILE": str(base / "feature_flags"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
        }

    @classmethod
    def start(cls, config: list[str] | None = None, timeout: float = 60.0) -> RabbitNode:
        server = _script("rabbitmq-server")
        if server is None or _script("rabbitmqctl") is None:
            pytest.skip("rabbitmq-server is not installed: cannot start a private node")
        node = cls(Path(tempfile.mkdtemp(prefix="routing-node-")), free_port(), free_port(), config or [])
        subprocess.run([server, "-detached"], env=node.env, check=True, capture_output=True, timeout=30)
        node.await_startup(timeout)
        return node

    def ctl(self, *args: str, timeout: float = 60.0) -> str:
        ctl = _script("rabbitmqctl")
        assert ctl is not None
        done = subprocess.run(
            [ctl, "-n", self.nodename, *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {done.stderr.strip() or done.stdout}")
        return done.stdout

    def await_startup(self, timeout: float = 60.0) -> None:
        """`-detached` returns before the node registers with epmd, so retry until it answers."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.ctl("await_startup", "--timeout", "30", timeout=40)
                return
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"private RabbitMQ node did not start: {exc}; logs in {self.base}"
                    ) from exc
                time.sleep(0.5)

    def close_all_connections(self, reason: str = "test: close all connections") -> None:
        self.ctl("close_all_connections", reason)

    def stop_app(self) -> None:
        self.ctl("stop_app")

    def start_app(self) -> None:
        self.ctl("start_app")

    def restart_app(self) -> None:
        self.stop_app()
        self.start_app()

    def list_queues(self) -> dict[str, int]:
        out = self.ctl("list_queues", "name", "messages", "--quiet", "--no-table-headers")
        return {name: int(n) for name, n in (line.split("\t") for line in out.splitlines() if "\t" in line)}

    def stop(self) -> None:
        try:
            self.ctl("stop", timeout=60)
        except (RuntimeError, subprocess.TimeoutExpired):
            pid = (self.base / "pid").read_text().strip() if (self.base / "pid").exists() else ""
            if pid.isdigit():
                subprocess.run(["kill", pid], check=False)  # only the node this helper started
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> RabbitNode:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture(scope="module")
def rabbit_node() -> Iterator[RabbitNode]:
    """A private node for this test module; stopped and removed afterwards."""
    node = RabbitNode.start()
    try:
        yield node
    finally:
        node.stop()
