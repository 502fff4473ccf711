"""URLs for running the CLI against the test broker."""

from __future__ import annotations

from urllib.parse import urlsplit


def with_management(amqp_url: str, management_url: str) -> str:
    """`amqp_url` naming its management API, which the CLI reads (the DLX of a queue, an
    exchange's settings): on a broker whose API is not on port 15672 (the 4.0 node) too."""
    parts = urlsplit(management_url)
    sep = "&" if "?" in amqp_url else "?"
    return f"{amqp_url}{sep}management={parts.scheme}://{parts.hostname}:{parts.port}"
