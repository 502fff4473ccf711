"""A small reader for RabbitMQ's management HTTP API: definitions, single exchanges, nodes.

The client lives with the RabbitMQ transport (`routing.transport.rabbitmq._management`),
which reads the same API while declaring; this is its public name.
"""

from __future__ import annotations

from routing.transport.rabbitmq._management import Management

__all__ = ["Management"]
