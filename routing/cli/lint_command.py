"""`routing lint TOPOLOGY`: static checks before a deploy, one line per finding; exit 1 on errors.

TOPOLOGY is a definitions JSON file or `package.module:attribute` (`routing.loading`); `--app`
adds an App's workers (and, with `@QUEUE`, its queues), `--publishers` what producers send.
"""

from __future__ import annotations

from typing import Any

import click

from routing.errors import DefinitionsError
from routing.lint import AppQueue, Severity, lint
from routing.loading import load_instance, load_topology, load_value
from routing.operations import Publishes
from routing.profiles import profile
from routing.worker import App

__all__ = ["lint_command", "register"]


@click.command("lint")
@click.argument("topology", metavar="TOPOLOGY")
@click.option(
    "--app",
    "apps",
    multiple=True,
    metavar="MODULE:APP[@QUEUE]",
    help="An App whose workers run on the topology: on QUEUE (its retry and dead-letter queues are "
    "added), else on each queue that has them. Repeatable.",
)
@click.option(
    "--publishers",
    multiple=True,
    metavar="MODULE:ATTR",
    help="A routing.lint.Publishes, or a list of them: what producers send (exchange, key, headers, "
    "per-message TTL). Repeatable.",
)
@click.option(
    "--rabbitmq",
    "release",
    default="4.0",
    show_default=True,
    metavar="VERSION",
    help='The target release: "3.10" or "4.0" (or a full version, 4.0.5).',
)
@click.option(
    "--consumer-timeout",
    type=click.IntRange(min=1),
    metavar="MS",
    help="The broker's consumer_timeout in ms, as rabbitmq.conf sets it (default 1800000: 30 minutes).",
)
@click.option("--vhost", help="The vhost to read from a definitions file (default: its one vhost, else /).")
def lint_command(
    topology: str,
    apps: tuple[str, ...],
    publishers: tuple[str, ...],
    release: str,
    consumer_timeout: int | None,
    vhost: str | None,
) -> None:
    """Check a topology before deploying it: dead-letter cycles RabbitMQ drops, queues nothing
    routes to, messages and dead letters that reach no queue, quorum queues that drop at their
    delivery limit, retry delays past consumer_timeout, per-message TTLs mixed in one queue,
    at-least-once dead-lettering that falls back to at-most-once, and what the release
    deprecates or refuses. One line each: error or warning, the entity, the problem, the fix.
    Exit code 1 when there is an error, 0 otherwise (warnings only, or nothing).

    \b
    Examples:
      routing lint examples.shop_topology:topology
      routing lint examples.resize_worker:topology --app examples.resize_worker:app --rabbitmq 3.10
    """
    target = profile(release)
    topo = load_topology(topology, vhost=vhost)
    findings = lint(
        topo,
        profile=release,
        publishers=[p for ref in publishers for p in _publishers(ref)],
        apps=[_app(ref) for ref in apps],
        consumer_timeout_ms=consumer_timeout,
    )
    for finding in findings:
        click.echo(str(finding))
    errors = sum(f.severity is Severity.ERROR for f in findings)
    warnings = len(findings) - errors
    family = f"{target.name} ({target.releases})"
    on = f"on RabbitMQ {family}" if release == target.name else f"on RabbitMQ {release}, profile {family}"
    if not findings:
        click.echo(f"no findings {on}")
    else:
        click.echo(f"{_count(errors, 'error')}, {_count(warnings, 'warning')} {on}")
    if errors:
        raise click.exceptions.Exit(1)


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def _app(ref: str) -> App | AppQueue:
    name, at, queue = ref.partition("@")
    app = load_instance(name, App)
    if at and not queue:
        raise click.BadParameter(f"{ref}: name the queue after @, e.g. {name}@jobs", param_hint="--app")
    return (app, queue) if at else app


def _publishers(ref: str) -> list[Publishes]:
    value: Any = load_value(ref, "Publishes or a list of them")
    items = [value] if isinstance(value, Publishes) else value
    if isinstance(items, list | tuple) and all(isinstance(p, Publishes) for p in items):
        return list(items)
    raise DefinitionsError(f"{ref}: is of type {type(value).__name__}, not a Publishes or a list of them")


def register(group: click.Group) -> None:
    """Add this module's command to `group`."""
    group.add_command(lint_command)
