"""What `consume` and `tail` share: the loop over deliveries, and how one is printed."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from routing.envelope import Envelope, Rejection, decode_or_reject
from routing.schemas import SchemaRegistry
from routing.transport import Delivery


class Source(Protocol):
    """Where deliveries come from: a consumer, or `consume`'s basic.get fetcher."""

    def get(self, timeout: float | None = None) -> Delivery | None: ...
    def cancel(self) -> None: ...


def render_delivery(item: Delivery, result: Envelope | Rejection, as_json: bool, number: int) -> str:
    """One delivery as `consume` and `tail` print it: two lines, or one JSON object."""
    where = {"exchange": item.exchange, "routing_key": item.routing_key, "queue": item.queue}
    if as_json:
        record: dict[str, Any] = {**where, "redelivered": item.redelivered}
        if item.headers:
            record["headers"] = _jsonable(item.headers)
        if isinstance(result, Rejection):
            record["rejected"] = {"reason": result.reason, "path": result.path}
        else:
            record["envelope"] = _jsonable(result.to_dict())  # its data may hold 1e999 (inf)
        return json.dumps(record, ensure_ascii=False, allow_nan=False, default=str)
    shown = item.exchange or "(default)"
    head = f"#{number} {shown} {item.routing_key!r}" + (" (redelivered)" if item.redelivered else "")
    if isinstance(result, Rejection):
        path = f" at {result.path}" if result.path else ""
        return f"{head} REJECTED{path}: {result.reason}"
    data = json.dumps(result.to_dict().get("data"), ensure_ascii=False, default=str)
    return f"{head} {result.type} id={result.id} source={result.source}\n    data: {data}"


def _jsonable(value: Any) -> Any:
    """A header value as JSON can hold it: bytes as text (a bad byte as U+FFFD), names that
    are bytes as text too, NaN and infinities as strings (JSON has no such numbers)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value).replace("inf", "Infinity").replace("nan", "NaN")
    if isinstance(value, Mapping):
        return {_jsonable(k) if isinstance(k, bytes) else str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def watch(
    consumer: Source,
    handle: Callable[[Delivery, Envelope | Rejection], None],
    registry: SchemaRegistry,
    event_type: str | None,
    limit: int | None,
    timeout: float | None,
) -> tuple[int, int]:
    """Decode and hand on each delivery until `limit` of them, `timeout` seconds of silence,
    or Ctrl-C; returns (shown, rejected)."""
    shown = rejected = 0
    try:
        while limit is None or shown < limit:
            item = consumer.get(timeout=timeout)
            if item is None:
                break
            result = decode_or_reject(item.body, item.properties, registry=registry, event_type=event_type)
            shown += 1
            rejected += isinstance(result, Rejection)
            handle(item, result)
    except KeyboardInterrupt:
        pass
    consumer.cancel()
    return shown, rejected
