"""The FastAPI app: `uvicorn examples.webapp.app:app` (or `create_app(...)` for another setup).

One transport per process, opened in the lifespan and closed with it; the resizer's topology
declared on it at startup. On `memory://` (the default: a demo with nothing else to run) the
resizer's worker runs in this process, in a thread, on the same embedded broker; on
`amqp://` workers run apart: `routing worker examples.image_resizer:app --queue resize`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, HTTPException, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

import routing.aio
from examples.image_resizer import app as resizer
from examples.image_resizer import topology
from examples.image_resizer.storage import storage_dir
from examples.webapp.jobs import QUEUE, Invalid, Jobs, NotTaken, resized_path, status
from routing.transport import open_transport as open_blocking
from routing.urls import is_memory, resolve
from routing.worker import Worker

__all__ = ["FORM_SLACK", "MAX_UPLOAD_BYTES", "PAGE", "BodyLimit", "app", "create_app", "demo_worker"]

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
FORM_SLACK = 64 * 1024  # a request may be this much larger than its file: the other fields, boundaries
PAGE = Path(__file__).with_name("index.html")


class BodyLimit:
    """Refuses a POST whose body would be over `limit` bytes by its Content-Length (413), or
    that does not say its length (411), before any of it is read: the form parser would
    otherwise spool a file of any size to disk before the endpoint could look at it."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            length = dict(scope["headers"]).get(b"content-length", b"")
            if not length.isdigit():
                return await JSONResponse({"detail": "say the body's Content-Length"}, 411)(
                    scope, receive, send
                )
            if int(length) > self.limit:
                detail = f"the request is {int(length)} bytes, over the {self.limit}-byte limit"
                return await JSONResponse({"detail": detail}, 413)(scope, receive, send)
        await self.app(scope, receive, send)


@contextlib.contextmanager
def demo_worker(url: str) -> Iterator[Worker]:
    """The resizer's worker on the broker at `url` (its own blocking transport), in a thread,
    until the block ends: the message in hand is finished, then the thread returns."""
    with open_blocking(url) as transport:
        worker = Worker(resizer, transport, QUEUE)
        thread = threading.Thread(target=worker.run, name="resize-worker", daemon=True)
        thread.start()
        try:
            yield worker
        finally:
            worker.stop()
            thread.join(timeout=30)


def create_app(
    url: str | None = None,
    *,
    max_bytes: int = MAX_UPLOAD_BYTES,
    confirm_timeout: float = 10.0,
    worker: bool | None = None,
) -> FastAPI:
    """The web app on the broker at `url` (else ROUTING_URL, else memory://), with uploads of at
    most `max_bytes`. `worker`: run the resizer in this process (default: on memory:// only)."""

    @contextlib.asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[None]:
        target = resolve(url)
        storage = storage_dir()
        async with routing.aio.open_transport(target) as transport:
            await transport.declare(topology)
            publisher = routing.aio.Publisher(transport, source="urn:routing:webapp", mandatory=True)
            api.state.jobs = Jobs(storage, publisher, max_bytes, confirm_timeout)
            in_process = is_memory(target) if worker is None else worker
            with demo_worker(target) if in_process else contextlib.nullcontext():
                yield

    api = FastAPI(title="routing: resize images", lifespan=lifespan)
    api.add_middleware(BodyLimit, limit=max_bytes + FORM_SLACK)

    @api.get("/", response_class=HTMLResponse)
    async def page() -> HTMLResponse:
        return HTMLResponse(PAGE.read_text(encoding="utf-8"))

    @api.post("/jobs/resize", status_code=202)
    async def resize(
        file: Annotated[UploadFile, File()], width: Annotated[int, Form()], height: Annotated[int, Form()]
    ) -> dict[str, str]:
        jobs: Jobs = api.state.jobs
        data = await file.read(jobs.max_bytes + 1)
        try:
            job_id = await jobs.submit(data, file.filename, file.content_type or "", width, height)
        except Invalid as exc:
            raise HTTPException(exc.status, exc.reason) from None
        except NotTaken as exc:
            raise HTTPException(503, f"{exc}; nothing was queued, try again") from None
        return {"id": job_id, "status": f"/jobs/{job_id}"}

    @api.get("/jobs/{job_id}")
    async def job(job_id: str) -> JSONResponse:
        found = status(api.state.jobs.storage, job_id)
        if found is None:
            raise HTTPException(404, f"no job {job_id!r}")
        return JSONResponse(found)

    @api.get("/jobs/{job_id}/image")
    async def image(job_id: str) -> FileResponse:
        path = resized_path(api.state.jobs.storage, job_id)
        if path is None:
            raise HTTPException(404, f"job {job_id!r} has no resized image (yet)")
        return FileResponse(path)

    return api


app = create_app()
