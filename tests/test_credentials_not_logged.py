"""A password in a broker URL never reaches output, logs or error messages.

A private node gets a user whose password is distinctive (and full of characters a URL must
escape); the real `routing` command runs against it at DEBUG, the library connects,
reconnects and fails with log capture on, and nothing shown anywhere may contain it. The
first tests are pure: `redact()` and URL parsing on passwords written carelessly.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from loguru import logger
from rabbit_node import RabbitNode, free_port, rabbit_node  # noqa: F401  (the fixture)

from routing.definitions import dump_definitions
from routing.errors import ConnectionFailed, ConnectionLost, RoutingError
from routing.management import Management
from routing.topology import Binding, Exchange, Queue, Topology
from routing.transport import open_transport
from routing.transport.rabbitmq import RabbitTransport
from routing.transport.rabbitmq._url import parse_urls
from routing.urls import ENV_VAR, describe, redact

LOG = {"level": "error", "service": "billing", "message": "card declined", "time": "2026-01-01T00:00:00Z"}
_SCRIPT = Path(sys.executable).with_name("routing")
ROUTING = (
    [str(_SCRIPT)]
    if _SCRIPT.exists()
    else [sys.executable, "-c", "from routing.cli import main; main(prog_name='routing')"]
)


@dataclass(frozen=True)
class Secret:
    user: str
    password: str
    token: str  # the distinctive start of the password: found in any form that shows it

    @classmethod
    def new(cls) -> Secret:
        token = f"Zq{uuid.uuid4().hex[:16]}"
        # base64 passwords hold / + =; the rest are the characters that break URL parsing.
        return cls(f"routing-cred-{uuid.uuid4().hex[:8]}", f"{token}/+=@:#%?x", token)

    @property
    def forms(self) -> list[str]:
        """Every way the password could show: as is, percent-encoded, in a Basic header."""
        basic = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return [self.token, self.password, quote(self.password, safe=""), basic]

    def url(self, port: int, *, password: str | None = None, host: str = "127.0.0.1") -> str:
        return f"amqp://{self.user}:{quote(password or self.password, safe='')}@{host}:{port}/%2F"


def assert_hidden(secret: Secret, *texts: str) -> None:
    for text in texts:
        for form in secret.forms:
            at = text.find(form)
            assert at < 0, f"the password shows: ...{text[max(0, at - 80) : at + 40]!r}..."


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and every exception under it: causes, contexts, and pika's wrapped ones."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        item = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        inner = [item.__cause__, item.__context__, getattr(item, "exception", None)]
        inner += [a for a in getattr(item, "args", ()) if isinstance(a, BaseException)]
        inner += list(getattr(item, "exceptions", None) or ())
        todo += [i for i in inner if isinstance(i, BaseException)]


def assert_error_hidden(secret: Secret, exc: BaseException) -> None:
    """Nothing an application could print or log about `exc` shows the password."""
    texts = [text for item in _chain(exc) for text in (str(item), repr(item))]
    assert_hidden(secret, *texts, "".join(traceback.format_exception(exc)))


# ------------------------------------------------------------------ pure


TOKEN = "Zq0123456789abcdef"


@pytest.mark.parametrize(
    "url",
    [
        f"amqp://u:{TOKEN}@h:5672/%2F",
        f"amqp://u:{TOKEN}@h1:5672/%2F,amqp://u:{TOKEN}@h2:5672/%2F",  # a cluster in ROUTING_URL
        f"amqp://u:{TOKEN}@h1/%2F, amqps://u:{TOKEN}@h2/%2F",
        f"amqp://u:{TOKEN}/abc@h/%2F",  # unescaped / (base64), # and ?: a URL parse stops there
        f"amqp://u:{TOKEN}#abc@h/%2F",
        f"amqp://u:{TOKEN}?abc@h/%2F",
        f"amqp://u:{TOKEN}@abc@h/%2F",
        f"amqp://u:a/{TOKEN}@h/%2F",
        f"amqp://u:{TOKEN}@h:99999/",  # a port out of range made the old redact() raise
        f"amqp://u:{TOKEN}@[::1/",
        f"u:{TOKEN}@h:5672",  # no scheme
        f"amqp://u:{TOKEN}@h/%2F?management=http://admin:{TOKEN}@h:15672",
    ],
)
def test_redact_hides_every_password(url: str) -> None:
    shown = redact(url)
    assert TOKEN not in shown and "***" in shown
    assert TOKEN not in describe(url)


def test_redact_keeps_what_is_not_a_password() -> None:
    for url in ("amqp://h:5672/%2F", "amqp://user@h/%2F", "memory://", "amqps://h/%2F?verify=false"):
        assert redact(url) == url
    assert redact("amqp://u:p@rabbit:5672/v?heartbeat=5") == "amqp://u:***@rabbit:5672/v?heartbeat=5"


@pytest.mark.parametrize(
    "url",
    [
        f"amqp://u:{TOKEN}@h:99999/%2F",
        f"amqp://u:{TOKEN}@h:port/%2F",
        f"amqp://u:{TOKEN}@h/%2F?heartbeat=soon",
        f"amqp://u:{TOKEN}@h/%2F?no_such_option=1",
        f"amqp://u:{TOKEN}@h/a/b",
        f"http://u:{TOKEN}@h/",
        f"amqp://u:{TOKEN}/abc@h/%2F",
        f"amqp://u:{TOKEN}#abc@h/%2F",
    ],
)
def test_url_errors_never_show_the_password(url: str) -> None:
    with pytest.raises(ConnectionFailed) as info:
        parse_urls(url)
    assert TOKEN not in str(info.value)


def test_a_management_option_with_credentials_is_not_shown() -> None:
    management = Management.for_broker(
        f"amqp://u:p@127.0.0.1/%2F?management=http://admin:{TOKEN}@127.0.0.1:1"
    )
    with pytest.raises(RoutingError) as info:
        management.get("overview")
    assert TOKEN not in str(info.value) and TOKEN not in management.base


def test_open_transport_with_an_unknown_scheme() -> None:
    with pytest.raises(ConnectionFailed) as info:
        open_transport(f"rabbit://u:{TOKEN}@h/")
    assert TOKEN not in str(info.value) and "unknown scheme" in str(info.value)


# ------------------------------------------------------------------ the CLI


@pytest.fixture(scope="module")
def secret(rabbit_node: RabbitNode) -> Iterator[Secret]:  # noqa: F811
    """A user of the private node with a distinctive password, on vhost "/"."""
    made = Secret.new()
    rabbit_node.ctl("add_user", made.user, made.password)
    rabbit_node.ctl("set_permissions", "-p", "/", made.user, ".*", ".*", ".*")
    yield made
    rabbit_node.ctl("delete_user", made.user)


def routing_cli(*args: str, env_url: str | None = None) -> subprocess.CompletedProcess[str]:
    """`routing --log-level DEBUG ARGS` as a user runs it; ROUTING_URL only if given."""
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    if env_url is not None:
        env[ENV_VAR] = env_url
    return subprocess.run(
        [*ROUTING, "--log-level", "DEBUG", *args], capture_output=True, text=True, env=env, timeout=120
    )


def _ran(done: subprocess.CompletedProcess[str], secret: Secret, code: int = 0) -> str:
    """Check the exit code and that nothing printed shows the password; the stdout."""
    assert done.returncode == code, done.stdout + done.stderr
    assert_hidden(secret, done.stdout, done.stderr)
    return done.stdout


@pytest.mark.parametrize("log_json", [False, True], ids=["text-logs", "json-logs"])
@pytest.mark.broker
@pytest.mark.slow
def test_cli_commands_at_debug(
    rabbit_node: RabbitNode,  # noqa: F811
    secret: Secret,
    unique: str,
    tmp_path: Path,
    log_json: bool,
) -> None:
    url = secret.url(rabbit_node.port)
    shown = f"broker: amqp://{secret.user}:***@127.0.0.1:{rabbit_node.port}/%2F"
    logs = ["--log-json"] if log_json else []
    exchange, queue = f"{unique}.x", f"{unique}.q"
    topology = Topology.of(Exchange(exchange, "direct"), Queue(queue), Binding(exchange, queue, "k"))
    path = tmp_path / "topology.json"
    path.write_text(json.dumps(dump_definitions(topology)))

    def run(*args: str, management: str = "") -> str:
        option = f"?management={management}" if management else ""
        done = routing_cli(*logs, *args, "--url", url + option)
        out = _ran(done, secret)
        assert out.splitlines()[0] == shown + option
        assert "connected" in done.stderr  # the DEBUG log was on, and captured
        if log_json:
            assert f'"url": "amqp://{secret.user}:***@' in done.stderr  # bound context, serialized
        return out + done.stderr

    assert "created queue" in run("declare", str(path))
    # Again: now that both ends exist, declare asks the management API (with the URL's
    # credentials) whether the binding does. The private node has no management plugin; the
    # URL names a port where nothing answers (the conventional one may be another broker's):
    # the fallback runs, and logs why.
    closed = f"http://127.0.0.1:{free_port()}"
    assert "management API not usable for " in run("declare", str(path), management=closed)
    sent = run("publish", "--exchange", exchange, "--routing-key", "k", "--type", "log.record",
               "--data", json.dumps(LOG))  # fmt: skip
    assert "1 confirmed" in sent
    assert "1 message(s), 0 rejected" in run("consume", queue, "--limit", "1", "--timeout", "5")
    assert "0 message(s)" in run("tail", "amq.topic", "--key", "#", "--timeout", "1")


@pytest.mark.parametrize("command", [["consume", "q", "--timeout", "1"], ["declare", "topology.json"]])
@pytest.mark.parametrize(("where", "why"), [("wrong", "wrong username or password"), ("closed", "refused")])
@pytest.mark.broker
@pytest.mark.slow
def test_cli_failing_connects(
    rabbit_node: RabbitNode,  # noqa: F811
    secret: Secret,
    tmp_path: Path,
    command: list[str],
    where: str,
    why: str,
) -> None:
    (tmp_path / "topology.json").write_text(json.dumps(dump_definitions(Topology.of(Queue("q")))))
    if where == "wrong":
        url = secret.url(rabbit_node.port, password=secret.password + "-wrong")
    else:
        url = secret.url(1)
    args = [str(tmp_path / a) if a.endswith(".json") else a for a in command]
    done = routing_cli(*args, "--url", url)
    _ran(done, secret, code=1)
    error = done.stderr.splitlines()[-1]
    assert error.startswith(f"Error: amqp://{secret.user}:***@127.0.0.1:") and why in error


@pytest.mark.broker
@pytest.mark.slow
def test_cli_with_routing_url(rabbit_node: RabbitNode, secret: Secret) -> None:  # noqa: F811
    url = secret.url(rabbit_node.port)
    out = _ran(routing_cli("tail", "amq.fanout", "--timeout", "1", env_url=url), secret)
    assert out.splitlines()[0] == f"broker: amqp://{secret.user}:***@127.0.0.1:{rabbit_node.port}/%2F"
    # A cluster in one variable: the first node is down, the second answers.
    cluster = f"{secret.url(1)},{url}"
    out = _ran(routing_cli("tail", "amq.fanout", "--timeout", "1", env_url=cluster), secret)
    assert out.splitlines()[0].count(":***@") == 2


# ------------------------------------------------------------------ the library


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[list[str]]:
    """Every loguru record of `routing` (serialized: message, bound context, exception),
    as an application that enables the library's logging would get them; pika's own
    logging goes to `caplog`, at DEBUG."""
    caplog.set_level(logging.DEBUG)
    records: list[str] = []
    logger.enable("routing")
    sink = logger.add(records.append, level="TRACE", serialize=True, backtrace=True, diagnose=True)
    try:
        yield records
    finally:
        logger.remove(sink)
        logger.disable("routing")


@pytest.mark.broker
@pytest.mark.slow
def test_library_connect_publish_consume(
    rabbit_node: RabbitNode,  # noqa: F811
    secret: Secret,
    unique: str,
    logs: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with RabbitTransport(secret.url(rabbit_node.port)) as rabbit:
        rabbit.declare(Topology.of(Queue(unique, auto_delete=True)))
        rabbit.publish("", unique, b"x")
        assert rabbit.flush(timeout=10) == []
        consumer = rabbit.consume(unique)
        delivery = consumer.get(timeout=5)
        assert delivery is not None
        rabbit.ack(delivery)
        consumer.cancel()
        assert_hidden(secret, rabbit.url, repr(rabbit))
    assert any('"message": "connected"' in r for r in logs)
    assert caplog.records, "pika's logging was not captured"
    assert_hidden(secret, *logs, caplog.text)


@pytest.mark.broker
@pytest.mark.slow
@pytest.mark.parametrize("where", ["wrong", "closed", "cluster"])
def test_library_failures(
    rabbit_node: RabbitNode,  # noqa: F811
    secret: Secret,
    logs: list[str],
    caplog: pytest.LogCaptureFixture,
    where: str,
) -> None:
    wrong = secret.url(rabbit_node.port, password=secret.password + "-wrong")
    url = {"wrong": wrong, "closed": secret.url(1), "cluster": f"{secret.url(1)},{wrong}"}[where]
    with pytest.raises(ConnectionFailed) as info:
        RabbitTransport(url)
    assert_error_hidden(secret, info.value)
    assert_hidden(secret, *logs, caplog.text)


@pytest.mark.broker
@pytest.mark.slow
def test_library_reconnect(
    rabbit_node: RabbitNode,  # noqa: F811
    secret: Secret,
    unique: str,
    logs: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with RabbitTransport(secret.url(rabbit_node.port), reconnect_timeout=30) as rabbit:
        rabbit.declare(Topology.of(Queue(unique)))
        rabbit.publish("", unique, b"before")
        assert rabbit.flush(timeout=10) == []
        rabbit_node.close_all_connections()
        assert rabbit.purge(unique) == 1  # on a new connection
        assert rabbit.reconnects == 1
        rabbit.delete_queue(unique)
    assert any("reconnected" in r for r in logs)
    assert_hidden(secret, *logs, caplog.text)


@pytest.mark.broker
@pytest.mark.slow
def test_library_reconnect_that_fails(
    rabbit_node: RabbitNode,  # noqa: F811
    unique: str,
    logs: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The user is deleted while connected: every reconnect attempt is refused, and logged."""
    doomed = Secret.new()
    rabbit_node.ctl("add_user", doomed.user, doomed.password)
    rabbit_node.ctl("set_permissions", "-p", "/", doomed.user, ".*", ".*", ".*")
    rabbit = RabbitTransport(doomed.url(rabbit_node.port), reconnect_timeout=2)
    try:
        rabbit.declare(Topology.of(Queue(unique, auto_delete=True)))
        rabbit_node.ctl("delete_user", doomed.user)
        rabbit_node.close_all_connections()
        with pytest.raises(ConnectionLost) as info:
            rabbit.purge(unique)
    finally:
        rabbit.close()
    assert "wrong username or password" in str(info.value)
    assert any("reconnect attempt" in r for r in logs)
    assert_error_hidden(doomed, info.value)
    assert_hidden(doomed, *logs, caplog.text)
