"""The one message every contender sends: a realistic `log.record` envelope of ~540 bytes.

The toolkit builds a fresh envelope per message from `DATA` (`Publisher.emit`); the peers
send `body()` pre-built, with the same AMQP properties, persistent.
"""

from __future__ import annotations

from typing import Any

from routing import Envelope, Properties, encode, to_properties

EVENT_TYPE = "log.record"
SOURCE = "urn:svc:billing"
SUBJECT = "invoice/2024-0042"
EXTENSIONS = {"tenant": "acme"}
DATA: dict[str, Any] = {
    "level": "error",
    "service": "billing",
    "logger": "billing.payments",
    "message": "card declined for invoice 2024-0042",
    "time": "2024-05-01T12:00:00.123456Z",
    "host": "billing-7f9c",
    "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
    "fields": {"invoice": "2024-0042", "amount_cents": 129900, "retry": 2, "tags": ["eu", "card"]},
}


def envelope(data: Any = None) -> Envelope:
    return Envelope.new(
        EVENT_TYPE, DATA if data is None else data, source=SOURCE, subject=SUBJECT, extensions=EXTENSIONS
    )


def body_and_properties() -> tuple[bytes, Properties]:
    """One encoded envelope and its persistent properties: what the peers publish, as is."""
    event = envelope()
    return encode(event), to_properties(event, persistent=True)
