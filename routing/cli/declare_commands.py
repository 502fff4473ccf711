"""`routing declare` and `routing diff`: a topology on RabbitMQ, and how the broker differs."""

from __future__ import annotations

from dataclasses import replace

import click

from routing.cli._shared import (
    conflicting_entities,
    print_report,
    rabbit_url,
    rabbitmq_url_option,
    target_check,
)
from routing.cluster import cluster_warnings
from routing.diff import diff_topology
from routing.errors import DeclareConflicts
from routing.loading import load_topology
from routing.management import Management
from routing.transport import DeclareReport, open_transport
from routing.urls import describe

__all__ = ["DIFFERENT", "declare", "diff", "register"]


DIFFERENT = 3  # `routing diff`'s exit code for drift: 1 is an error, 2 click's usage error


@click.command()
@click.argument("topology", metavar="TOPOLOGY")
@rabbitmq_url_option
def declare(topology: str, url: str | None) -> None:
    """Declare TOPOLOGY on RabbitMQ, idempotently.

    TOPOLOGY is a definitions JSON file or `package.module:attribute`. A second run
    changes nothing and says so. Entities the broker already has with other settings
    are listed, one line each, and the command exits 1. On a cluster of several nodes
    (as the management API tells), each durable classic queue gets a warning: it lives
    on one node; Topology.replicated() makes such queues quorum queues.

    \b
    Example:
      routing declare examples.shop_topology:topology --url amqp://guest:guest@localhost/
    """
    broker_url = rabbit_url(url, "declare")
    click.echo(describe(broker_url))
    management = Management.for_broker(broker_url)
    loaded = load_topology(topology, vhost=management.vhost)
    try:
        with open_transport(broker_url) as transport:
            target_check(loaded, transport.server_version)
            report = transport.declare(loaded)
    except DeclareConflicts as exc:
        if isinstance(exc.report, DeclareReport):
            print_report(exc.report)
        for line in exc.conflicts:
            click.echo(f"conflict: {line}", err=True)
        raise click.ClickException(
            f"{conflicting_entities(exc.conflicts)} entities differ from what the broker has; "
            "the rest was declared. "
            "Delete them on the broker or change the topology to match."
        ) from exc
    warnings = cluster_warnings(loaded, management)
    print_report(report)
    for line in warnings:
        click.echo(line, err=True)


@click.command()
@click.argument("topology", metavar="TOPOLOGY")
@rabbitmq_url_option
@click.option(
    "--management-url",
    metavar="URL",
    help="The management HTTP API (default: the AMQP host, port 15672, same user and password).",
)
@click.option("--ignore-extra", is_flag=True, help="Do not list what only the broker has.")
@click.option("--strict", is_flag=True, help="What only the broker has counts as a difference too.")
@click.pass_context
def diff(
    ctx: click.Context,
    topology: str,
    url: str | None,
    management_url: str | None,
    ignore_extra: bool,
    strict: bool,
) -> None:
    """Compare TOPOLOGY with what the broker has, through the management API.

    Prints what declaring would create, what differs (setting by setting, argument by
    argument) and what exists only on the broker, in the URL's vhost. Exit code 0 when
    the broker has the topology as written (what only the broker has is listed, and
    counts only with --strict), 3 when it differs, 1 on error (2 is click's usage error).

    \b
    Example:
      routing diff examples.shop_topology:topology --url amqp://guest:guest@localhost/%2F
    """
    if ignore_extra and strict:
        raise click.UsageError("give --ignore-extra or --strict, not both")
    broker_url = rabbit_url(url, "diff")
    click.echo(describe(broker_url))
    management = Management.for_broker(broker_url, management_url)
    loaded = load_topology(topology, vhost=management.vhost)
    click.echo(f"management API: {management.base}, vhost {management.vhost!r}")
    result = diff_topology(loaded, management.definitions(), vhost=management.vhost)
    if ignore_extra:
        result = replace(result, extra=())
    for line in result.create:
        click.echo(f"would create: {line}")
    for difference in result.differ:
        click.echo(f"differs: {difference.describe()}")
    for line in result.extra:
        click.echo(f"only on the broker: {line}")
    for line in result.skipped:
        click.echo(f"not compared: {line}")
    if not (result.drift or (strict and bool(result.extra))):
        more = f"; {len(result.extra)} more only on the broker (--strict counts them)"
        click.echo("the broker matches the topology" + (more if result.extra else ""))
        return
    click.echo(
        f"{len(result.create)} to create, {len(result.differ)} differing, "
        f"{len(result.extra)} only on the broker"
    )
    ctx.exit(DIFFERENT)


def register(group: click.Group) -> None:
    """Add this module's commands to `group`."""
    group.add_command(declare)
    group.add_command(diff)
