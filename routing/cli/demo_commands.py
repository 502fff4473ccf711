"""`routing demo NAME|all`: run the demos on the embedded broker or on RabbitMQ."""

from __future__ import annotations

import click

from routing.cli._shared import click_error
from routing.demos import DEMOS, as_json, render
from routing.errors import RoutingError
from routing.urls import ENV_VAR, describe, resolve

__all__ = ["demo", "register"]


@click.command()
@click.argument("name", type=click.Choice([*DEMOS, "all"]))
@click.option("--url", help=f"Broker URL (default: ${ENV_VAR}, else the embedded broker).")
@click.option("--json", "as_machine", is_flag=True, help="Print every delivery as JSON.")
@click.option(
    "--force",
    is_flag=True,
    help="Delete and replace exchanges and queues of the demo's names that the broker already has.",
)
def demo(name: str, url: str | None, as_machine: bool, force: bool) -> None:
    """Run demo NAME (or all four): how each exchange type routes, delivery by delivery.

    Each demo declares its exchanges and queues (names starting with `demo.`) and deletes
    them, messages included, when it ends. When the broker already has one of those names,
    the demo leaves it alone, says which, and exits 1; --force deletes and replaces them.

    \b
    Example:
      routing demo topic-logs
      routing demo all --url amqp://guest:guest@localhost:5672/
    """
    url = resolve(url)
    # With --json the broker line goes to stderr, so stdout is one JSON document.
    click.echo(describe(url), err=as_machine)
    names = list(DEMOS) if name == "all" else [name]
    results = []
    for n in names:
        try:
            result = DEMOS[n](url, force=force)
        except RoutingError as exc:  # named after the demo, unless its own refusal does
            raise click_error(exc, prefix="" if str(exc).startswith(f"demo {n}:") else f"demo {n}: ") from exc
        results.append(result)
        if not as_machine:
            click.echo(render(result) + "\n")
    if as_machine:
        click.echo(as_json(results))


def register(group: click.Group) -> None:
    """Add this module's commands to `group`."""
    group.add_command(demo)
