"""Offline commands on a topology: `explain`, `export`, `graph`. No broker needed.

TOPOLOGY is a definitions JSON file or a Python reference `package.module:attribute`
(see `routing.loading`). Library errors become one line and exit code 1.
"""

from __future__ import annotations

import json
from typing import Any

import click

from routing.cli._shared import header_option, target_check
from routing.definitions import dump_definitions, void_arguments
from routing.errors import UnknownExchange
from routing.graph import markdown, mermaid
from routing.loading import load_topology, topology_vhost
from routing.pipeline import Step, explain
from routing.profiles import Profile, profile
from routing.topology import Topology

__all__ = ["explain_command", "export_command", "graph_command", "register", "target_profile"]


_TOPOLOGY = click.argument("topology", metavar="TOPOLOGY")
_VHOST = click.option(
    "--vhost",
    help="The vhost to read from a definitions file (and, for export, to write); by default the"
    " one vhost the file has, else /.",
)


_RABBITMQ = click.option(
    "--rabbitmq",
    "release",
    metavar="VERSION",
    help='The RabbitMQ release whose rules apply: "3.10", "4.0" or a full version such as 4.0.5 '
    "(default: the newest verified profile, or the release of the broker --url names).",
)
_RABBITMQ_CHECK = click.option(
    "--rabbitmq",
    "release",
    metavar="VERSION",
    help="Check the topology for this RabbitMQ release (4.0.5, 4.3...): warnings on stderr for what "
    "it deprecates, an error for what it refuses (see Topology.check).",
)
_BROKER_URL = click.option(
    "--url",
    help="Read the RabbitMQ release from this broker (it announces its version); nothing is declared.",
)


def target_profile(release: str | None, url: str | None) -> Profile:
    """The profile a command answers for: `--rabbitmq`, else the version the `--url` broker
    announces, else the newest verified. Both given and disagreeing is an error."""
    chosen = None if release is None else profile(release)
    if url is None:
        return profile(chosen)
    from routing.transport import open_transport  # only when asked: the offline path needs no broker

    with open_transport(url) as transport:
        announced = transport.server_version
    live = profile(announced)
    if chosen is not None and chosen is not live:
        raise click.ClickException(
            f"--rabbitmq {release} but the broker at --url is RabbitMQ {announced}; give one of them"
        )
    return live


@click.command("explain")
@_TOPOLOGY
@click.option(
    "--exchange", "-e", required=True, help='The exchange a message is published to ("" is the default).'
)
@click.option("--routing-key", "-k", default="", help="The message's routing key.")
@header_option
@_VHOST
@_RABBITMQ
@_BROKER_URL
@click.option("--json", "as_json", is_flag=True, help="Print {queues, trace} as JSON.")
def explain_command(
    topology: str,
    exchange: str,
    routing_key: str,
    headers: dict[str, Any],
    vhost: str | None,
    release: str | None,
    url: str | None,
    as_json: bool,
) -> None:
    """Which queues a message reaches, and why: every binding tried on the way.

    \b
    Examples:
      routing explain definitions.json --exchange shop.events --routing-key order.created
      routing explain examples.shop_topology:topology -e shop.events -k order.created -H region=eu --json
      routing explain definitions.json -e shop.events -k order.paid -H n=1.0 --rabbitmq 3.10
    """
    rules = target_profile(release, url)
    topo = load_topology(topology, vhost=vhost)
    try:
        result = explain(topo, exchange, routing_key, headers or None, rabbitmq=rules)
    except UnknownExchange as exc:
        raise click.ClickException(f"{exc} in {topology}; it has {_exchange_names(topo)}") from exc
    if as_json:
        trace = [step.as_dict() for step in result.trace]
        out = {"queues": sorted(result.queues), "trace": trace}
        click.echo(json.dumps(out, indent=2, ensure_ascii=False))
        return
    shown = "the default exchange" if exchange == "" else repr(exchange)
    pairs = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in headers.items())
    intro = f"A message to {shown} with key {routing_key!r}" + (f" and headers {pairs}" if pairs else "")
    if result.queues:
        count = len(result.queues)
        click.echo(f"{intro} reaches {count} queue{'s' if count > 1 else ''}:")
        for name in sorted(result.queues):
            click.echo(f"  {name}")
    else:
        click.echo(f"{intro} reaches no queue: it is dropped, or returned if published mandatory.")
    click.echo(f"\nTrace (+ matched), by the rules of RabbitMQ {rules.name} ({rules.releases}):")
    for step in result.trace:
        line = _trace_line(step)
        click.echo(click.style(line, fg="green") if step.matched else line)


def _trace_line(step: Step) -> str:
    mark = "+" if step.matched else " "
    where = step.exchange or "(default exchange)"
    b = step.binding
    if b is None:
        return f"  {mark} {where}: {step.reason}"
    kind = " (exchange)" if b.destination_type == "exchange" else ""
    return f"  {mark} {where} -> {b.destination}{kind}: {step.reason}"


def _exchange_names(topology: Topology) -> str:
    names = [e.name for e in topology.exchanges]
    if not names:
        return "no exchanges of its own"
    shown = ", ".join(map(repr, names[:10]))
    return f"exchanges {shown}" + (f" and {len(names) - 10} more" if len(names) > 10 else "")


@click.command("export")
@_TOPOLOGY
@_VHOST
@click.option(
    "--skip-exclusive",
    is_flag=True,
    help="Leave exclusive queues (and their bindings) out instead of refusing: RabbitMQ never exports them.",
)
@_RABBITMQ_CHECK
def export_command(topology: str, vhost: str | None, skip_exclusive: bool, release: str | None) -> None:
    """Print the topology as RabbitMQ definitions JSON (for POST /api/definitions).

    \b
    Examples:
      routing export examples.shop_topology:topology > definitions.json
      curl -u guest:guest -H content-type:application/json \\
           -d @definitions.json http://localhost:15672/api/definitions
    """
    vhost = topology_vhost(topology, vhost)
    topo = load_topology(topology, vhost=vhost)
    if release is not None:
        target_check(topo, release)
    data = dump_definitions(topo, vhost=vhost, skip_exclusive=skip_exclusive)
    try:
        text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False)
    except ValueError as exc:  # NaN or Infinity in an argument: not JSON
        raise click.ClickException(f"{topology}: cannot be written as JSON ({exc})") from exc
    click.echo(text)
    void = void_arguments(topo)
    if void:
        click.echo(
            "warning: RabbitMQ's definitions import refuses null (void, e.g. 'header present'): "
            f"{'; '.join(void)}. Declare this topology over AMQP instead.",
            err=True,
        )


@click.command("graph")
@_TOPOLOGY
@_VHOST
@click.option("--markdown", "as_markdown", is_flag=True, help="Wrap the diagram in a ```mermaid fence.")
@_RABBITMQ_CHECK
def graph_command(topology: str, vhost: str | None, as_markdown: bool, release: str | None) -> None:
    """Print the topology as a Mermaid flowchart: exchanges, queues, labelled bindings.

    \b
    Examples:
      routing graph examples.shop_topology:topology --markdown >> README.md
      routing graph definitions.json --vhost shop > shop.mmd
    """
    topo = load_topology(topology, vhost=vhost)
    if release is not None:
        target_check(topo, release)
    click.echo(markdown(topo) if as_markdown else mermaid(topo), nl=False)


def register(group: click.Group) -> None:
    """Add this module's commands to `group`."""
    for command in (explain_command, export_command, graph_command):
        group.add_command(command)
