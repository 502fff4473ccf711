"""A job's result, as the worker writes it and the web app reads it: `results/<job id>.json`.

    {"id": "9f2c...", "status": "done", "reason": null, "output": "resized/cat.jpg",
     "width": 320, "height": 213, "attempts": 1}

`status` is "done", "retrying" (an attempt failed; `reason` says why, another comes) or "failed"
(dead-lettered: `reason` says why). No file yet means the job is queued: only the worker writes
results, so a "queued" written by the web app could never overwrite a "done" that came first.
Files are replaced whole (`atomic_write`): a reader never sees half of one.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from examples.image_resizer.storage import RESULTS, atomic_write

__all__ = ["STATUSES", "Result", "read_result", "result_path", "write_result"]

Status = Literal["done", "retrying", "failed"]
STATUSES: tuple[Status, ...] = ("done", "retrying", "failed")
# A job id names a file: letters, digits, '.', '_' and '-', not starting with a dot.
_SAFE_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    """What became of one job. `output` is relative to the storage folder; `width` and
    `height` are the resized image's; `attempts` counts the failed attempts before this one's
    result (for "done"), or those so far."""

    id: str
    status: Status
    reason: str | None = None
    output: str | None = None
    width: int | None = None
    height: int | None = None
    attempts: int = 0

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"result status must be one of {', '.join(STATUSES)}, got {self.status!r}")

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, text: bytes | str) -> Result:
        document: Any = json.loads(text)
        if not isinstance(document, dict):
            raise ValueError("a result is a JSON object")
        try:
            return cls(**{k: v for k, v in document.items() if k in cls.__dataclass_fields__})
        except TypeError as exc:  # a field missing
            raise ValueError(f"not a result: {exc}") from None


def result_path(storage: Path, job_id: str) -> Path:
    """Where the result of `job_id` is kept; ValueError for an id that cannot name a file."""
    if not _SAFE_ID.fullmatch(job_id):
        raise ValueError(f"job id {job_id!r} cannot name a result file (letters, digits, '.', '_', '-')")
    return storage / RESULTS / f"{job_id}.json"


def write_result(storage: Path, result: Result) -> Path:
    """Replace the job's result file with `result`, whole."""
    path = result_path(storage, result.id)
    atomic_write(path, result.to_json())
    return path


def read_result(storage: Path, job_id: str) -> Result | None:
    """The job's latest result, or None while it has none (queued, or unknown)."""
    try:
        text = result_path(storage, job_id).read_bytes()
    except FileNotFoundError:
        return None
    return Result.from_json(text)
