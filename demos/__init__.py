"""The four demos: `routing demo NAME`, or `python demos/NAME.py`.

Each module declares its topology in code (`topology(prefix)`, `TOPOLOGY`) and has
`run(url, *, prefix=...) -> DemoResult`.
"""

from __future__ import annotations

from collections.abc import Callable

from routing.demos import cache_invalidation, header_filtering, topic_logs, work_queue
from routing.demos._common import DEFAULT_PREFIX, DeliveryRecord, DemoResult, Table, as_json, render

DEMOS: dict[str, Callable[..., DemoResult]] = {
    m.NAME: m.run for m in (topic_logs, cache_invalidation, header_filtering, work_queue)
}

__all__ = ["DEFAULT_PREFIX", "DEMOS", "DeliveryRecord", "DemoResult", "Table", "as_json", "render"]
