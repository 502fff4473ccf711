"""The `routing` command: a thin click layer over the library."""

from __future__ import annotations

import sys
from typing import Any

import click
from loguru import logger

from routing import __version__
from routing.cli import (
    asyncapi_command,
    broadcast_commands,
    consume_command,
    declare_commands,
    demo_commands,
    envelope_commands,
    lint_command,
    publish_command,
    tail_command,
    topology_commands,
    ui_command,
    worker_commands,
)
from routing.cli._logging import LEVELS, configure_logging
from routing.cli._shared import click_error
from routing.errors import RoutingError

__all__ = ["main"]


_PASSED_ON = (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort, EOFError)


class _Group(click.Group):
    """The group, with the promise every command keeps: an error is one line and exit 1,
    never a traceback. The one place a library error becomes a click error (commands let
    them pass); what escapes a command unexpectedly (a bug) is shown as one line too, and
    `--log-level DEBUG` logs its traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        _text_streams_escape_surrogates()
        try:
            return super().invoke(ctx)
        except _PASSED_ON:
            raise
        except RecursionError:
            raise click.ClickException("input nested too deeply") from None
        except RoutingError as exc:  # a library error says what went wrong: one line, exit 1
            raise click_error(exc) from exc
        except Exception as exc:
            logger.opt(exception=exc).debug("unexpected error")
            raise click_error(exc) from exc


def _text_streams_escape_surrogates() -> None:
    """A lone surrogate (JSON's "\\ud800", or a non-UTF-8 byte of an argument) is printed as its
    escape, `\\ud800`, instead of failing to encode; inside a JSON string that escape is valid."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")


def _log_level(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if value.upper() not in LEVELS:
        raise click.ClickException(f"--log-level {value!r}: choose one of {', '.join(LEVELS)}")
    return value.upper()


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="routing")
@click.option(
    "--log-level",
    default="WARNING",
    show_default=True,
    callback=_log_level,
    help="DEBUG, INFO, WARNING or ERROR.",
)
@click.option("--log-json", is_flag=True, help="Write logs as JSON lines (for machines).")
def main(log_level: str, log_json: bool) -> None:
    """RabbitMQ routing in code: topologies, routing explanations, envelopes, demos.

    \b
    Example:
      routing explain topology.json --exchange logs --routing-key billing.error
    """
    configure_logging(log_level, log_json)


for module in (
    topology_commands,
    lint_command,
    asyncapi_command,
    envelope_commands,
    declare_commands,
    publish_command,
    tail_command,
    consume_command,
    worker_commands,
    broadcast_commands,
    demo_commands,
    ui_command,
):
    module.register(main)
