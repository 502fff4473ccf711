"""The one client of RabbitMQ's management HTTP API: definitions, exchanges, queues, bindings, nodes.

Read-only but for closing a connection, stdlib `urllib` only. The API's address defaults to the AMQP URL's host on port
15672 (15671 with TLS, or the URL's `management=` option), with the AMQP URL's credentials
and vhost; a `management_url` given explicitly wins, and so do credentials written in it.
Basic auth is built here and only here, and every failure becomes a `routing.errors` one
here (`get`). Public as `routing.management.Management`.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from routing.errors import BrokerError, ConnectionFailed
from routing.transport.rabbitmq._url import Endpoint, parse_urls
from routing.urls import redact

__all__ = ["Management"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Management:
    """Where the management API is, whose credentials to use, and which vhost to read."""

    base: str  # no credentials: safe to print
    vhost: str = "/"
    username: str = "guest"
    password: str = field(default="guest", repr=False)
    timeout: float = 5.0

    @classmethod
    def for_broker(cls, amqp_url: str, management_url: str | None = None, timeout: float = 5.0) -> Management:
        """The management API of the broker `amqp_url` names (its first node)."""
        return cls.for_endpoint(parse_urls(amqp_url)[0], management_url, timeout)

    @classmethod
    def for_endpoint(
        cls, ep: Endpoint, management_url: str | None = None, timeout: float = 5.0
    ) -> Management:
        """The management API of one broker node; `ConnectionFailed` for a URL that is not http(s)."""
        username, password = ep.username, ep.password
        # Given here, as the URL's management= option, or the AMQP host on port 15672; its
        # credentials, if any, are used and never kept in `base`.
        management_url = management_url or ep.management_url
        parts = urlsplit(management_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConnectionFailed(
                f"{redact(management_url)}: the management URL must be http(s)://host:15672"
            )
        if parts.username is not None:
            username = unquote(parts.username)
            password = unquote(parts.password or "")
        netloc = parts.netloc.rsplit("@", 1)[-1]
        base = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        return cls(base=base, vhost=ep.vhost, username=username, password=password, timeout=timeout)

    def get(self, path: str, *, method: str = "GET", why: str | None = None) -> Any:
        """GET `path` (under /api) as JSON, None for 404; `BrokerError` with one clear line
        otherwise. `method="DELETE"` (with an `X-Reason`) is the one write: closing a connection."""
        url = f"{self.base}/api/{path}"
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        headers = {"Authorization": f"Basic {token}", **({"X-Reason": why} if why else {})}
        request = urllib.request.Request(url, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = response.read()
                return json.loads(body) if body else None
        except urllib.error.HTTPError as exc:
            exc.close()  # it holds the response's socket
            if exc.code == 401:
                raise ConnectionFailed(
                    f"management API at {self.base} refused the credentials of user {self.username!r}"
                ) from None
            if exc.code == 404:
                return None
            raise BrokerError(f"management API at {self.base}: HTTP {exc.code} for {path}") from None
        except (OSError, ValueError) as exc:  # URLError is an OSError; ValueError: not JSON
            reason = getattr(exc, "reason", exc)
            raise ConnectionFailed(
                f"management API not reachable at {self.base} ({reason}); enable it with "
                "`rabbitmq-plugins enable rabbitmq_management` or pass --management-url"
            ) from None

    def definitions(self) -> dict[str, Any]:
        """`GET /api/definitions/{vhost}`: the vhost's exchanges, queues and bindings."""
        data = self.get(f"definitions/{quote(self.vhost, safe='')}")
        if data is None:
            raise ConnectionFailed(f"management API at {self.base}: no vhost {self.vhost!r}")
        if not isinstance(data, dict):
            raise BrokerError(f"management API at {self.base}: definitions are not a JSON object")
        return data

    def exchange(self, name: str) -> dict[str, Any] | None:
        """One exchange of the vhost as the API shows it, or None when it does not exist."""
        data = self.get(f"exchanges/{quote(self.vhost, safe='')}/{quote(name, safe='')}")
        return data if isinstance(data, dict) else None

    def queue(self, name: str) -> dict[str, Any] | None:
        """One queue of the vhost as the API shows it, or None when it does not exist."""
        data = self.get(f"queues/{quote(self.vhost, safe='')}/{quote(name, safe='')}")
        return data if isinstance(data, dict) else None

    def dead_letter_exchange(self, queue: str) -> str | None:
        """The dead-letter exchange `queue` has (its argument, else its policy's), when a
        message rejected there would land somewhere; None when it has none, or when it names
        an exchange that does not exist or routes nowhere (RabbitMQ then drops the message
        without a word)."""
        item = self.queue(queue) or {}
        arguments = item.get("arguments") or {}
        policy = item.get("effective_policy_definition") or {}
        # The queue's own argument wins over a policy's key, as in RabbitMQ.
        found = arguments.get("x-dead-letter-exchange", policy.get("dead-letter-exchange"))
        if not isinstance(found, str):
            return None
        if found == "":  # the default exchange: to the queue the dead-letter routing key names
            key = arguments.get("x-dead-letter-routing-key", policy.get("dead-letter-routing-key"))
            return found if isinstance(key, str) and self.queue(key) is not None else None
        exchange = self.exchange(found)
        if exchange is None:
            return None
        if (exchange.get("arguments") or {}).get("alternate-exchange"):
            return found
        return found if self.bindings_from(found) else None

    def bindings_from(self, exchange: str) -> list[dict[str, Any]] | None:
        """The bindings whose source is `exchange`, or None when it does not exist."""
        data = self.get(f"exchanges/{quote(self.vhost, safe='')}/{quote(exchange, safe='')}/bindings/source")
        return [b for b in data if isinstance(b, dict)] if isinstance(data, list) else None

    def connection_names(self, client_name: str) -> list[str]:
        """The broker's names of the connections a client opened as `client_name`."""
        data = self.get("connections") or []
        named = [c for c in data if isinstance(c, dict)]
        return [
            c["name"]
            for c in named
            if (c.get("client_properties") or {}).get("connection_name") == client_name
        ]

    def close_connection(self, name: str, reason: str) -> None:
        """`DELETE /api/connections/{name}`: the broker closes it (320 CONNECTION_FORCED, `reason`)."""
        self.get(f"connections/{quote(name, safe='')}", method="DELETE", why=reason)

    def nodes(self) -> list[dict[str, Any]]:
        """`GET /api/nodes`: every node of the cluster, running or not (`name`, `running`...)."""
        data = self.get("nodes")
        if not isinstance(data, list):
            raise BrokerError(f"management API at {self.base}: nodes are not a JSON list")
        return [node for node in data if isinstance(node, dict)]
