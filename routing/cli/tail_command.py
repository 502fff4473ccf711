"""`routing tail EXCHANGE`: what flows through an exchange, on a temporary queue (`routing.watching`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from routing.cli._shared import (
    announce,
    header_option,
    json_lines_option,
    limit_option,
    load_registry,
    schemas_option,
    timeout_option,
    url_option,
)
from routing.cli._watching import render_delivery, until_ctrl_c
from routing.errors import DeclareConflicts
from routing.topology import ExchangeType
from routing.transport import open_transport
from routing.watching import Tail, open_tail

__all__ = ["register", "tail"]


_EXCHANGE_TYPES = click.Choice(["direct", "fanout", "topic", "headers"])


@click.command()
@click.argument("exchange")
@click.option(
    "--routing-key",
    "-k",
    "key",
    help="The binding key to watch with: a topic pattern (default '#') or a direct key.",
)
@click.option("--key", "old_key", hidden=True)  # the spelling before --routing-key
@header_option
@click.option(
    "--match",
    type=click.Choice(["all", "any"]),
    default="all",
    show_default=True,
    help="Headers exchange: every --header must match, or any one.",
)
@click.option(
    "--exchange-type",
    "kind",
    type=_EXCHANGE_TYPES,
    help="The exchange's type, when the management API cannot tell.",
)
@click.option("--type", "old_kind", type=_EXCHANGE_TYPES, hidden=True)  # the spelling before --exchange-type
@limit_option
@timeout_option
@json_lines_option
@schemas_option
@url_option
def tail(
    exchange: str,
    key: str | None,
    old_key: str | None,
    headers: dict[str, Any],
    match: str,
    kind: str | None,
    old_kind: str | None,
    limit: int | None,
    timeout: float | None,
    as_json: bool,
    schemas: Path | None,
    url: str | None,
) -> None:
    """Watch what flows through EXCHANGE.

    Binds a temporary exclusive, auto-delete queue (gone when this command exits) with
    --routing-key (a binding key) for a topic or direct exchange, --header rules for a
    headers exchange, or nothing for fanout, and prints every message it receives. Nothing is taken from
    anyone: the exchange copies each message to this queue too.

    \b
    Examples:
      routing tail logs --routing-key '*.error' --limit 5
      routing tail media --header format=jpeg --header region=eu --match any
    """
    key = key if key is not None else old_key
    if key is not None and headers:
        raise click.UsageError("give --routing-key or --header, not both")
    kind = kind or old_kind
    spec = Tail(
        exchange=exchange,
        routing_key=key,
        headers=headers,
        match=match,
        exchange_type=None if kind is None else ExchangeType(kind),
    )
    broker_url = announce(url, err=as_json)
    registry = load_registry(schemas, allow_unknown=True)

    total = 0
    with open_transport(broker_url) as transport:
        try:
            with open_tail(transport, spec, url=broker_url) as tap:
                if not as_json:
                    click.echo(f"watching {tap.binding.describe()}; Ctrl-C to stop")
                for delivery, result in until_ctrl_c(tap.read(registry, limit=limit, timeout=timeout)):
                    total += 1
                    click.echo(render_delivery(delivery, result, as_json, total))
        except DeclareConflicts as exc:
            raise click.ClickException(
                f"{exc.conflicts[0]}; pass --exchange-type with the exchange's type"
            ) from exc
    click.echo(f"{total} message(s)", err=as_json)


def register(group: click.Group) -> None:
    """Add `tail` to `group`."""
    group.add_command(tail)
