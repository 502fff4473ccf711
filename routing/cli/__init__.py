"""The `routing` command: a thin click layer over the library."""

from __future__ import annotations

import click

from routing import __version__
from routing.cli import broker_commands, demo_commands, envelope_commands, topology_commands, worker_commands
from routing.cli._logging import configure_logging


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="routing")
@click.option("--log-level", default="WARNING", show_default=True, help="DEBUG, INFO, WARNING or ERROR.")
@click.option("--log-json", is_flag=True, help="Write logs as JSON lines (for machines).")
def main(log_level: str, log_json: bool) -> None:
    """RabbitMQ routing in code: topologies, routing explanations, envelopes, demos.

    \b
    Example:
      routing explain topology.json --exchange logs --routing-key billing.error
    """
    configure_logging(log_level, log_json)


for module in (topology_commands, envelope_commands, broker_commands, worker_commands, demo_commands):
    module.register(main)
