"""Commands that talk to a running RabbitMQ: `declare`."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import click

from routing.errors import DeclareConflicts, RoutingError
from routing.loading import load_topology
from routing.transport import open_transport
from routing.transport.base import DeclareReport
from routing.urls import ENV_VAR, describe, is_memory, resolve


def _rabbit_url(url: str | None) -> str:
    url = resolve(url)
    if is_memory(url):
        raise click.ClickException(
            "declare needs RabbitMQ: the embedded broker lives inside one process, so there is "
            f"nothing to declare on; pass --url amqp://user:pass@host:5672/vhost or set {ENV_VAR}"
        )
    return url


def _vhost(url: str) -> str:
    """The vhost a definitions file is read for: the (first) URL's, `%2F` being "/"."""
    path = urlsplit(url.split(",")[0].strip()).path
    return unquote(path[1:]) if len(path) > 1 else "/"


def _print_report(report: DeclareReport) -> None:
    for line in report.created:
        click.echo(f"created {line}")
    for line in report.unverified:
        click.echo(f"declared {line} (could not check whether it existed: management API not reachable)")
    counts = f"{len(report.created)} created, {len(report.unchanged)} unchanged"
    if report.unverified:
        counts += f", {len(report.unverified)} re-declared unverified"
    if not report.changed and not report.conflicts:
        click.echo(f"nothing to change ({counts})")
    else:
        click.echo(counts)


def register(group: click.Group) -> None:
    """Add this module's commands to `group`."""

    @group.command()
    @click.argument("topology", metavar="TOPOLOGY")
    @click.option("--url", help=f"amqp:// or amqps:// URL of the broker (default: ${ENV_VAR}).")
    def declare(topology: str, url: str | None) -> None:
        """Declare TOPOLOGY on RabbitMQ, idempotently.

        TOPOLOGY is a definitions JSON file or `package.module:attribute`. A second run
        changes nothing and says so. Entities the broker already has with other settings
        are listed, one line each, and the command exits 1.

        \b
        Example:
          routing declare shop/topology.py:topology --url amqp://guest:guest@localhost/
        """
        try:
            broker_url = _rabbit_url(url)
            click.echo(describe(broker_url))
            loaded = load_topology(topology, vhost=_vhost(broker_url))
            with open_transport(broker_url) as transport:
                report = transport.declare(loaded)
        except DeclareConflicts as exc:
            if isinstance(exc.report, DeclareReport):
                _print_report(exc.report)
            for line in exc.conflicts:
                click.echo(f"conflict: {line}", err=True)
            raise click.ClickException(
                f"{len(exc.conflicts)} entities differ from what the broker has; the rest was declared. "
                "Delete them on the broker or change the topology to match."
            ) from exc
        except RoutingError as exc:
            raise click.ClickException(str(exc)) from exc
        _print_report(report)
