"""What the commands share: their common options, the one error path, the URL to use, the
declare report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from routing._json import header_value
from routing.errors import RoutingError
from routing.profiles import ProfileError
from routing.schemas import SchemaRegistry
from routing.topology import Topology
from routing.transport import DeclareReport
from routing.urls import ENV_VAR, describe, is_memory, one_line, resolve

# ------------------------------------------------------------------ the one error path


def click_error(exc: Exception, prefix: str = "") -> click.ClickException:
    """The one way an error becomes a click error: one line, no password, exit code 1. A
    library error says what went wrong itself; anything else is unexpected, and named so."""
    text = str(exc) if isinstance(exc, RoutingError) else f"unexpected error: {type(exc).__name__}: {exc}"
    return click.ClickException(one_line(prefix + text))


# ------------------------------------------------------------------ options

URL_HELP = f"amqp://, amqps:// or memory:// URL of the broker (default: ${ENV_VAR}, else memory://)."
RABBITMQ_URL_HELP = f"amqp:// or amqps:// URL of RabbitMQ (default: ${ENV_VAR})."

url_option = click.option("--url", help=URL_HELP)
rabbitmq_url_option = click.option("--url", help=RABBITMQ_URL_HELP)
schemas_option = click.option(
    "--schemas",
    type=click.Path(file_okay=False, path_type=Path),
    help="A folder of <type>.schema.json files, loaded over the bundled schemas.",
)
allow_unknown_option = click.option(
    "--allow-unknown",
    is_flag=True,
    help="Accept event types that have no schema (their data goes unchecked).",
)
limit_option = click.option("--limit", type=click.IntRange(min=1), help="Stop after N messages.")
timeout_option = click.option(
    "--timeout", type=click.FloatRange(min=0), help="Stop after S seconds with no message."
)
json_lines_option = click.option("--json", "as_json", is_flag=True, help="One JSON object per message.")


def parse_header(text: str) -> tuple[str, Any]:
    """`NAME=VALUE`; the value is JSON when it parses (`n=1` is 1, `ok=true` is True), else a string."""
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise click.BadParameter(f"{text!r} is not NAME=VALUE (e.g. --header region=eu)")
    return name, header_value(raw)


def _headers(ctx: click.Context, param: click.Parameter, given: tuple[str, ...]) -> dict[str, Any]:
    return dict(parse_header(text) for text in given)


header_option = click.option(
    "--header",
    "-H",
    "headers",
    multiple=True,
    metavar="NAME=VALUE",
    callback=_headers,
    help="A header; the value is JSON when it parses (n=3 is a number), else a string. Repeatable.",
)


def load_registry(schemas: Path | None, allow_unknown: bool) -> SchemaRegistry:
    """The bundled schemas, plus the user's folder when given. For `--schemas` commands."""
    if schemas is None:
        return SchemaRegistry.bundled(allow_unknown=allow_unknown)
    return SchemaRegistry.from_directory(schemas, allow_unknown=allow_unknown)


# ------------------------------------------------------------------ the broker's URL


def rabbit_url(url: str | None, command: str) -> str:
    """`url` (or the default), refused when it names the embedded broker: a memory:// URL
    reaches only this process, where nothing else has declared or published anything."""
    url = resolve(url)
    if is_memory(url):
        raise click.ClickException(
            f"{command} needs RabbitMQ: the embedded broker lives inside one process, out of reach "
            f"of any other; pass --url amqp://user:pass@host:5672/vhost or set {ENV_VAR}"
        )
    return url


_EMBEDDED_NOTE = (
    "note: the embedded broker lives inside this one process: nothing published here reaches "
    "another process, and this process starts with no exchanges or queues of its own"
)


def announce(url: str | None, *, err: bool = False) -> str:
    """The broker URL to use, after printing the line that names it (on stderr with `err`,
    so that a --json stdout holds only JSON)."""
    url = resolve(url)
    click.echo(describe(url), err=err)
    if is_memory(url):  # what the URL names, said once: not a question about the transport
        click.echo(_EMBEDDED_NOTE, err=err)
    return url


# ------------------------------------------------------------------ declaring


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
