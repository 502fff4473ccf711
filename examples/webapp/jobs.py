"""What the web app does with a job, apart from HTTP: check an upload, store it, publish the job
and wait for the broker's confirm, and read back what became of it.

A job is refused before anything is stored when its numbers or its file are wrong (`Invalid`,
with the HTTP status that says why), and undone when the broker does not take it (`NotTaken`:
the upload is removed, nothing is queued). A job the caller was told is accepted is one the
broker confirmed: never a lost job.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path, PurePath
from typing import Any

from examples.image_resizer.results import Result, read_result, result_path
from examples.image_resizer.storage import UPLOADS, inside
from routing.aio import Publisher
from routing.errors import RoutingError
from routing.transport import Outcome

__all__ = [
    "EXCHANGE",
    "IMAGE_TYPES",
    "MAX_SIDE",
    "MIN_SIDE",
    "QUEUE",
    "ROUTING_KEY",
    "Invalid",
    "Jobs",
    "NotTaken",
    "check_side",
    "resized_path",
    "safe_name",
    "status",
]

EXCHANGE, ROUTING_KEY, QUEUE = "jobs", "resize", "resize"  # examples.image_resizer's topology
# The image types a browser sends that the worker's Pillow reads, and the suffix each is kept with.
IMAGE_TYPES = {"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp"}
_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _schema_bounds() -> tuple[int, int]:
    """The sides a job may ask for: the bounds of `task.resize_image`'s schema, not a copy."""
    text = files("routing.schemas_data").joinpath("task.resize_image.schema.json").read_text("utf-8")
    width: dict[str, Any] = json.loads(text)["properties"]["width"]
    return int(width["minimum"]), int(width["maximum"])


MIN_SIDE, MAX_SIDE = _schema_bounds()


class Invalid(Exception):
    """A request refused before anything was stored; `status` is the HTTP status to answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class NotTaken(Exception):
    """The broker did not take the job (returned, nacked, unconfirmed, refused); its upload is gone."""


def safe_name(filename: str | None, content_type: str) -> str:
    """A file name that is only letters, digits, '.', '_' and '-': the last part of what the
    browser sent (never a folder), no leading dot, at most 80 characters, ending with a suffix
    of the image type (the worker writes the resized image in the format its suffix names)."""
    base = PurePath((filename or "").replace("\\", "/")).name
    name = _UNSAFE.sub("_", base).lstrip(".")[:80] or "upload"
    if PurePath(name).suffix.lower() not in _SUFFIXES:
        name += IMAGE_TYPES[content_type]
    return name


def check_side(name: str, value: int) -> int:
    if not MIN_SIDE <= value <= MAX_SIDE:
        raise Invalid(422, f"{name} must be between {MIN_SIDE} and {MAX_SIDE}, got {value}")
    return value


def status(storage: Path, job_id: str) -> dict[str, Any] | None:
    """What the client is told of `job_id`: queued (with the last failed attempt's reason while
    it is being retried), done (with the resized size), failed (with the reason); None for a
    job this storage never had."""
    try:
        result: Result | None = read_result(storage, job_id)
    except ValueError:  # an id that names no file: never one of ours
        return None
    if result is None:
        if not any((storage / UPLOADS).glob(f"{job_id}-*")):
            return None
        return {"id": job_id, "status": "queued"}
    if result.status == "retrying":
        return {"id": job_id, "status": "queued", "reason": result.reason, "attempts": result.attempts}
    if result.status == "failed":
        return {"id": job_id, "status": "failed", "reason": result.reason}
    return {
        "id": job_id,
        "status": "done",
        "width": result.width,
        "height": result.height,
        "image": f"/jobs/{job_id}/image",
    }


def resized_path(storage: Path, job_id: str) -> Path | None:
    """The resized image of a done job, else None."""
    try:
        result = read_result(storage, job_id)
    except ValueError:
        return None
    if result is None or result.status != "done" or result.output is None:
        return None
    path = inside(storage, result.output, what="output")
    return path if path.is_file() else None


@dataclass(slots=True)
class Jobs:
    """Stores uploads under `storage/uploads/` and publishes their jobs through `publisher`
    (mandatory: a job no queue would get comes back as returned), waiting at most
    `confirm_timeout` seconds for the broker's answer."""

    storage: Path
    publisher: Publisher
    max_bytes: int
    confirm_timeout: float

    async def submit(
        self, data: bytes, filename: str | None, content_type: str, width: int, height: int
    ) -> str:
        """Store the upload, publish its job, and return the job id once the broker confirmed it."""
        if content_type not in IMAGE_TYPES:
            raise Invalid(
                415, f"not an image type the resizer takes: {content_type!r} (use {', '.join(IMAGE_TYPES)})"
            )
        if not data:
            raise Invalid(422, "the file is empty")
        if len(data) > self.max_bytes:
            raise Invalid(413, f"the file is {len(data)} bytes, over the {self.max_bytes}-byte limit")
        check_side("width", width)
        check_side("height", height)
        job_id = uuid.uuid4().hex
        result_path(self.storage, job_id)  # the id names a result file (a uuid always does)
        upload = self.storage / UPLOADS / f"{job_id}-{safe_name(filename, content_type)}"
        await asyncio.to_thread(upload.write_bytes, data)  # a file system may take milliseconds
        job = {
            "id": job_id,
            "input": upload.relative_to(self.storage).as_posix(),
            "width": width,
            "height": height,
        }
        try:
            await self._publish(job)
        except BaseException:
            # The caller hears "not taken" (or nothing): the upload goes. A job unconfirmed in
            # time that reached the queue anyway finds no input and fails, saying so.
            with contextlib.suppress(OSError):
                upload.unlink()
            raise
        return job_id

    async def _publish(self, job: dict[str, Any]) -> None:
        try:
            publication = await self.publisher.emit(
                EXCHANGE, ROUTING_KEY, "task.resize_image", job, mandatory=True
            )
            outcome = await asyncio.wait_for(asyncio.shield(publication), self.confirm_timeout)
        except TimeoutError:
            raise NotTaken(f"the broker did not confirm the job within {self.confirm_timeout:g} s") from None
        except RoutingError as exc:
            raise NotTaken(f"the broker refused the job: {exc}") from None
        if outcome is not Outcome.CONFIRMED:
            why = f": {publication.error}" if publication.error is not None else ""
            raise NotTaken(f"the broker did not take the job ({outcome}){why}")
