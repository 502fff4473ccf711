"""Declare's conflict lines from RabbitMQ's 406 texts (pure; the texts are 3.10.8's and 4.0.5's)."""

from __future__ import annotations

import pytest

from routing.errors import ChannelClosed
from routing.topology import Exchange, Queue
from routing.transport._declare import conflict_line

Q, X = Queue("jobs"), Exchange("logs", "topic")


@pytest.mark.parametrize(
    ("entity", "text", "line"),
    [
        (
            X,
            "PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'logs' in vhost '/': "
            "received 'fanout' but current is 'topic' (declare exchange 'logs' on 127.0.0.1:5672)",
            "exchange 'logs': argument 'type' differs: received 'fanout' but current is 'topic'",
        ),
        # Issue 12 item 32: these two came out raw (the value is not quoted, or there is none).
        (
            Q,
            "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'jobs' in vhost '/': "
            "received none but current is the value 'quorum' of type 'longstr'",
            "queue 'jobs': argument 'x-queue-type' differs: "
            "received none but current is the value 'quorum' of type 'longstr'",
        ),
        (
            X,
            "PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' for exchange 'logs' in vhost '/': "
            "received the value 'ae' of type 'longstr' but current is none (declare exchange 'logs' on h:5672)",
            "exchange 'logs': argument 'alternate-exchange' differs: "
            "received the value 'ae' of type 'longstr' but current is none",
        ),
    ],
)
def test_406_texts_become_one_line_naming_entity_and_argument(
    entity: Exchange | Queue, text: str, line: str
) -> None:
    assert conflict_line(entity, ChannelClosed(406, text)) == line
