"""A private RabbitMQ node for tests that break connections or restart the broker.

The shared broker on 5672 is never touched: this node has its own name, ports, data and
log directories, config file, cookie (its own HOME) and an empty plugin list. Use the
`rabbit_node` fixture (module-scoped; ~5 s to start), or `RabbitNode` directly:

    with RabbitNode.start() as node:
        node.close_all_connections()
        node.restart_app()

Later tests (TLS, clusters) can pass `config=` lines (e.g. `listeners.ssl.default = ...`);
files they name go in a `node_dir()`, written in the config as `seen_by_node(path)`.

The node runs the release of the broker under test: the host's binaries (3.10.8 here), or,
when the broker under test is RabbitMQ 4.x, the ones in the chroot `scripts/rabbitmq4.sh`
makes (`ROUTING_RABBITMQ4_ROOT`, default /var/lib/routing/trixie; needs root to chroot). A
chroot node keeps everything of its own (name, ports, data, config, cookie) under the
chroot's /tmp and shares the host's network and epmd, as the shared 4.0 node does.
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
from broker_under_test import AMQP_URL, release

from routing.profiles import profile

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
RABBITMQ4_ROOT = Path(os.environ.get("ROUTING_RABBITMQ4_ROOT", "/var/lib/routing/trixie"))
CHROOT_BIN = "/usr/lib/rabbitmq/bin"  # inside the chroot: the scripts, not the wrappers
CHROOT_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"

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


def _unavailable(reason: str) -> None:
    """No private node can be started: skip, or fail under CI (CI must run these tests)."""
    if IN_CI:
        pytest.fail(f"{reason}; CI must run the private-node tests", pytrace=False)
    pytest.skip(reason)


def release_root() -> Path | None:
    """The chroot whose RabbitMQ private nodes run: None for the host's binaries (the broker
    under test is 3.x), the 4.0 chroot when the broker under test is 4.x."""
    try:
        live = release(AMQP_URL)
    except Exception:  # the broker under test is down: its tests skip or fail on their own
        return None
    if profile(live).name == "3.10":
        return None
    return RABBITMQ4_ROOT


def node_dir(prefix: str = "routing-node-") -> Path:
    """A new directory a private node of the release under test can read (in its chroot's /tmp
    when it runs in one); the caller removes it."""
    root = release_root()
    if root is None:
        return Path(tempfile.mkdtemp(prefix=prefix))
    (root / "tmp").mkdir(exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=root / "tmp"))


def seen_by_node(path: Path) -> Path:
    """`path`, made by `node_dir()`, as a private node sees it (the chroot's root is its /)."""
    root = release_root()
    return Path("/") / path.relative_to(root) if root is not None else path


class RabbitNode:
    """One private node: `url`, `nodename`, and the `rabbitmqctl` operations tests need.

    `base` is the node's directory on this machine; `root` the chroot it runs in, or None."""

    def __init__(
        self, base: Path, port: int, dist_port: int, config: list[str], root: Path | None = None
    ) -> None:
        self.base = base
        self.root = root
        self.port = port
        self.dist_port = dist_port
        self.nodename = f"routing-test-{uuid.uuid4().hex[:8]}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{port}/%2F"
        (base / "home").mkdir(parents=True)
        (base / "enabled_plugins").write_text("[].\n")
        (base / "rabbitmq-env.conf").write_text("")
        lines = [f"listeners.tcp.default = 127.0.0.1:{port}", "loopback_users = none", *config]
        (base / "rabbitmq.conf").write_text("\n".join(lines) + "\n")
        inside = Path("/") / base.relative_to(root) if root is not None else base
        self.env = {
            "HOME": str(inside / "home"),  # its own Erlang cookie
            "RABBITMQ_NODENAME": self.nodename,
            "RABBITMQ_NODE_PORT": str(port),
            "RABBITMQ_DIST_PORT": str(dist_port),
            "RABBITMQ_MNESIA_BASE": str(inside / "mnesia"),
            "RABBITMQ_LOG_BASE": str(inside / "log"),
            "RABBITMQ_PID_FILE": str(inside / "pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(inside / "enabled_plugins"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(inside / "plugins-expand"),
            "RABBITMQ_FEATURE_FLAGS_FILE": str(inside / "feature_flags"),
            "RABBITMQ_CONFIG_FILE": str(inside / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(inside / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(inside / "rabbitmq-env.conf"),
        }

    @classmethod
    def start(cls, config: list[str] | None = None, timeout: float = 60.0) -> RabbitNode:
        """A node of the broker under test's release (see the module's docstring)."""
        root = release_root()
        if root is None:
            if _script("rabbitmq-server") is None or _script("rabbitmqctl") is None:
                _unavailable("rabbitmq-server is not installed: cannot start a private node")
            base = Path(tempfile.mkdtemp(prefix="routing-node-"))
        else:
            if not (root / CHROOT_BIN.lstrip("/") / "rabbitmq-server").exists():
                _unavailable(f"no RabbitMQ 4 chroot at {root}: run `sudo scripts/rabbitmq4.sh up`")
            if os.geteuid() != 0:
                _unavailable(f"a private RabbitMQ 4 node runs in the chroot {root}, which needs root")
            if not os.path.ismount(root / "proc"):
                _unavailable(f"{root}/proc is not mounted: run `sudo scripts/rabbitmq4.sh up`")
            base = node_dir()
        node = cls(base, free_port(), free_port(), config or [], root=root)
        node._run("rabbitmq-server", "-detached", timeout=30, check=True)
        node.await_startup(timeout)
        return node

    def _run(
        self, script: str, *args: str, timeout: float, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """One of RabbitMQ's scripts with this node's environment (in its chroot, if any)."""
        if self.root is None:
            path = _script(script)
            assert path is not None
            command, env = [path, *args], {**os.environ, **self.env}
        else:
            variables = [f"{k}={v}" for k, v in {"PATH": CHROOT_PATH, "LANG": "C.UTF-8", **self.env}.items()]
            command = [
                "chroot",
                str(self.root),
                "/usr/bin/env",
                "-i",
                *variables,
                f"{CHROOT_BIN}/{script}",
                *args,
            ]
            env = None
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, check=check)

    def ctl(self, *args: str, timeout: float = 60.0) -> str:
        done = self._run("rabbitmqctl", "-n", self.nodename, *args, timeout=timeout)
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
        # Given the pid file, `stop` returns once the VM has exited, so nothing it still
        # writes (its logs) comes back after the directory is removed.
        pid_file = [self.env["RABBITMQ_PID_FILE"]] if (self.base / "pid").exists() else []
        try:
            self.ctl("stop", *pid_file, timeout=60)
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
