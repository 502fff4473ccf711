"""`routing asyncapi`: a topology as an AsyncAPI 3.0 document (see `routing.asyncapi`). No broker needed."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

import click

from routing.asyncapi import asyncapi_document
from routing.cli._shared import load_registry, schemas_option
from routing.errors import DefinitionsError
from routing.loading import load_instance, load_topology, topology_vhost
from routing.operations import Consumes, Publishes
from routing.worker import App

__all__ = ["asyncapi_command", "register"]


@click.command("asyncapi")
@click.argument("topology", metavar="TOPOLOGY")
@click.option(
    "--publishes",
    "publishes_refs",
    multiple=True,
    metavar="MODULE:ATTR",
    help="A tuple of routing.asyncapi.Publishes: what is published where (repeatable). By default"
    " the `publishes` a Python TOPOLOGY's module exports beside it (a tuple, or a function returning one).",
)
@click.option(
    "--worker",
    "workers",
    nargs=2,
    multiple=True,
    metavar="APP QUEUE",
    help="A worker App (module:attr) and the queue it runs on: a receive operation per handler, and the"
    " retry copies and dead letters it sends (repeatable).",
)
@schemas_option
@click.option("--vhost", help="The vhost to read from a definitions file and to name in the bindings.")
@click.option("--title", help="info.title (default: the TOPOLOGY reference).")
@click.option("--api-version", default="1.0.0", show_default=True, help="info.version.")
@click.option(
    "--format",
    "form",
    type=click.Choice(["json", "yaml"]),
    help="json, or yaml (needs PyYAML). Default: yaml for an --output ending .yaml/.yml, else json.",
)
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write here, not stdout."
)
def asyncapi_command(
    topology: str,
    publishes_refs: tuple[str, ...],
    workers: tuple[tuple[str, str], ...],
    schemas: Path | None,
    vhost: str | None,
    title: str | None,
    api_version: str,
    form: str | None,
    output: Path | None,
) -> None:
    """Print TOPOLOGY as an AsyncAPI 3.0 document: a channel per exchange and queue with AMQP
    bindings, operations for what is published and handled where, payloads from the schemas.

    \b
    Examples:
      routing asyncapi examples.shop_topology:topology > shop.asyncapi.json
      routing asyncapi examples.resize_worker:topology --worker examples.resize_worker:app resize
      routing asyncapi definitions.json --publishes shop.flows:publishes -o shop.asyncapi.yaml
    """
    vhost = topology_vhost(topology, vhost)
    topo = load_topology(topology, vhost=vhost)
    publishes = [p for ref in publishes_refs for p in _publishes(ref)] or _beside(topology)
    consumes: list[Consumes] = []
    for app_ref, queue in workers:
        takes, sends = load_instance(app_ref, App).operations(queue)
        consumes += takes
        publishes += sends
    doc = asyncapi_document(
        topo,
        publishes=publishes,
        consumes=consumes,
        registry=load_registry(schemas, allow_unknown=True),
        title=title or topology,
        version=api_version,
        vhost=vhost,
    )
    if form is None:
        form = "yaml" if output is not None and output.suffix in (".yaml", ".yml") else "json"
    text = _yaml(doc) if form == "yaml" else _json(doc, topology)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")


def _publishes(ref: str) -> list[Publishes]:
    items = load_instance(ref, tuple, "tuple of Publishes")
    if not all(isinstance(p, Publishes) for p in items):
        raise DefinitionsError(
            f"{ref}: expected a tuple of routing.Publishes, or a function that returns one"
        )
    return list(items)


def _beside(topology: str) -> list[Publishes]:
    """The `publishes` of a Python TOPOLOGY's module (loaded already): a tuple, or a function
    that returns one. Nothing when it has none."""
    module = sys.modules.get(topology.partition(":")[0]) if ":" in topology else None
    if module is None or not hasattr(module, "publishes"):
        return []
    return _publishes(f"{module.__name__}:publishes")


def _json(doc: dict[str, Any], topology: str) -> str:
    try:
        return json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    except ValueError as exc:  # NaN or Infinity in an argument: not JSON
        raise click.ClickException(f"{topology}: cannot be written as JSON ({exc})") from exc


def _yaml(doc: dict[str, Any]) -> str:
    try:
        yaml = importlib.import_module("yaml")
    except ModuleNotFoundError:
        raise click.ClickException("--format yaml needs PyYAML: pip install 'routing[yaml]'") from None
    text: str = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    return text


def register(group: click.Group) -> None:
    """Add this module's command to `group`."""
    group.add_command(asyncapi_command)
