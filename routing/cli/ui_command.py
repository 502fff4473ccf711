"""`routing ui`: the routing playground, a page in the browser (the `ui` extra)."""

from __future__ import annotations

import errno
import ipaddress
import os
import signal
import socket

import click

from routing.loading import load_topology
from routing.topology import Topology

__all__ = ["listening_socket", "register", "ui"]


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to `host:port`, or one clear line when the port is taken."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        family = socket.AF_INET  # a name such as localhost
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: restart at once
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise click.ClickException(
                f"port {port} on {host} is taken (another server listens there); pass --port with another number"
            ) from None
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


@click.command("ui")
@click.argument("topology", metavar="[TOPOLOGY]", required=False)
@click.option(
    "--url",
    help="RabbitMQ to publish to (amqp:// or amqps://); without it, the embedded broker. "
    "Without TOPOLOGY, the broker's own topology is read through its management API.",
)
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8100, show_default=True, help="The port to serve on."
)
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to serve on.")
@click.option("--vhost", help="The vhost to read from a definitions file (by default its one vhost, else /).")
def ui(topology: str | None, url: str | None, port: int, host: str, vhost: str | None) -> None:
    """Serve the routing playground: draw TOPOLOGY, publish, watch the path and the queues.

    TOPOLOGY is what `routing explain` takes (a definitions file, or module:attribute) or a
    demo's name (topic-logs, header-filtering, cache-invalidation, work-queue). The page
    talks only to the broker named here: the embedded one, or --url (ROUTING_URL is not read).

    \b
    Examples:
      routing ui                      # the embedded broker: pick a demo on the page
      routing ui examples.shop_topology:topology
      routing ui --url amqp://guest:guest@localhost:5672/%2F
    """
    try:
        import uvicorn

        from routing.ui import DEMOS, Playground, create_app
        from routing.ui._app import LOOPBACK
    except ImportError as exc:
        raise click.ClickException(
            f"routing ui needs its extra ({exc.name} is missing): pip install 'routing[ui]'"
        ) from None
    demo = topology if topology in DEMOS and not os.path.exists(topology) else None
    given: Topology | None = None
    if topology is not None and demo is None:
        given = load_topology(topology, vhost=vhost)
    if url is None and topology is None:
        source = "nothing yet: pick a demo"
    else:
        source = topology or "the broker's own topology"
    sock = listening_socket(host, port)
    try:
        playground = Playground(given, url=url, source=source)
        if demo is not None:
            playground.load(demo)
    except BaseException:
        sock.close()
        raise
    app = create_app(playground, hosts=tuple(dict.fromkeys((*LOOPBACK, host))))
    shown = f"[{host}]" if ":" in host else host
    click.echo(
        f"routing ui: http://{shown}:{sock.getsockname()[1]}/  (broker: {playground.broker}; Ctrl+C stops)"
    )
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2, lifespan="on")
    # uvicorn shuts down on SIGINT or SIGTERM, then raises the signal again under the handlers it
    # found: ours, which end the command quietly (exit code 0) once the page's broker is closed.
    previous = {sig: signal.signal(sig, _stopped) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except _Stop:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
    click.echo("routing ui: stopped")


class _Stop(Exception):
    """SIGINT or SIGTERM, raised once uvicorn has shut down."""


def _stopped(signum: int, frame: object) -> None:
    raise _Stop


def register(group: click.Group) -> None:
    """Add this module's commands to `group`."""
    group.add_command(ui)
