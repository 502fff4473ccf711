"""What `consume` and `tail` share: how a delivery is printed, and stopping at Ctrl-C."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypeVar

from routing.envelope import Envelope, Rejection
from routing.transport import Delivery

T = TypeVar("T")


def until_ctrl_c(items: Iterable[T]) -> Iterator[T]:
    """`items`, until they end or Ctrl-C stops them (then quietly: a summary follows)."""
    try:
        yield from items
    except KeyboardInterrupt:
        return


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
