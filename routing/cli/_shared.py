"""What the broker commands share: the URL to use, one-line errors, the declare report."""

from __future__ import annotations

import re
from typing import Any

import click

from routing.envelope import parse_json
from routing.errors import RoutingError
from routing.profiles import ProfileError
from routing.topology import Topology
from routing.transport.base import DeclareReport
from routing.urls import ENV_VAR, describe, is_memory, resolve

URL_HELP = f"amqp://, amqps:// or memory:// URL of the broker (default: ${ENV_VAR}, else memory://)."
_EMBEDDED_NOTE = (
    "note: the embedded broker lives inside this one process: nothing published here reaches "
    "another process, and this process starts with no exchanges or queues of its own"
)


header_option = click.option(
    "--header",
    "headers",
    multiple=True,
    metavar="NAME=VALUE",
    help="A header; the value is JSON when it parses (n=3 is a number), else a string. Repeatable.",
)


def parse_header(text: str) -> tuple[str, Any]:
    """`NAME=VALUE`; the value is JSON when it parses (`n=1` is 1, `ok=true` is True), else a string."""
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise click.BadParameter(f"{text!r} is not NAME=VALUE (e.g. --header region=eu)")
    try:
        value = parse_json(raw)  # NaN and Infinity are not JSON: kept as text
    except ValueError:
        value = raw
    return name, value


def parse_headers(values: tuple[str, ...]) -> dict[str, Any]:
    """The `--header NAME=VALUE` options as a dict."""
    return dict(parse_header(v) for v in values)


def rabbit_url(url: str | None, command: str) -> str:
    url = resolve(url)
    if is_memory(url):
        raise click.ClickException(
            f"{command} needs RabbitMQ: the embedded broker lives inside one process, out of reach "
            f"of any other; pass --url amqp://user:pass@host:5672/vhost or set {ENV_VAR}"
        )
    return url


def announce(url: str | None, *, err: bool = False) -> str:
    """The broker URL to use, after printing the line that names it (on stderr with `err`,
    so that a --json stdout holds only JSON)."""
    url = resolve(url)
    click.echo(describe(url), err=err)
    if is_memory(url):
        click.echo(_EMBEDDED_NOTE, err=err)
    return url


def print_report(report: DeclareReport) -> None:
    for line in report.created:
        click.echo(f"created {line}")
    for line in report.unverified:
        click.echo(f"declared {line} (could not check whether it existed: management API not reachable)")
    for line in report.skipped:
        click.echo(f"skipped {line}")
    counts = f"{len(report.created)} created, {len(report.unchanged)} unchanged"
    if report.unverified:
        counts += f", {len(report.unverified)} re-declared unverified"
    if report.conflicts:
        counts += f", {conflicting_entities(report.conflicts)} conflicting"
    if report.skipped:
        counts += f", {len(report.skipped)} skipped"
    if not report.changed and not report.conflicts:
        click.echo(f"nothing to change ({counts})")
    else:
        click.echo(counts)


def conflicting_entities(conflicts: tuple[str, ...]) -> int:
    """How many entities the conflict lines (one per differing setting) name."""
    return len({line.split(": ", 1)[0] for line in conflicts})


def target_check(topology: Topology, version: str) -> None:
    """Warn (on stderr) of what the broker's release deprecates; refuse what it refuses."""
    if not version:
        return
    try:
        findings = topology.check(rabbitmq=version)
    except ProfileError as exc:
        click.echo(f"warning: {exc}; the topology was not checked for this release", err=True)
        return
    refused = [str(f) for f in findings if f.refused]
    for finding in findings:
        if not finding.refused:
            click.echo(f"warning: {finding}", err=True)
    if refused:
        raise click.ClickException(f"RabbitMQ {version} refuses {len(refused)}: " + "; ".join(refused))


def fail(exc: RoutingError) -> click.ClickException:
    return click.ClickException(one_line(str(exc)))


# user:password@ inside any URL of a text (an error message from elsewhere may hold one)
_USERINFO = re.compile(r"(://[^:/?#@\s]*:)[^@\s]*@")


def one_line(text: str) -> str:
    """`text` on one line, any URL's password shown as `***`."""
    return _USERINFO.sub(r"\1***@", " ".join(text.split()))
