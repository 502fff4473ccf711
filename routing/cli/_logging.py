"""Log sinks are the CLI's choice, never the library's."""

from __future__ import annotations

import sys

from loguru import logger

LEVELS = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")  # loguru's own


def configure_logging(level: str, as_json: bool) -> None:
    logger.remove()
    logger.enable("routing")
    logger.add(sys.stderr, level=level.upper(), serialize=as_json)
