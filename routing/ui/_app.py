"""The page's HTTP side: a FastAPI app over one `Playground`.

`GET /` is the page (routing/ui/static: plain HTML, CSS and JavaScript, shipped as package
data; no build step, nothing from a CDN). The JSON API: `GET /api/state`, `POST /api/publish`,
`/api/profile`, `/api/load`, `/api/peek`, `/api/purge`; `GET /api/events` streams queue depths
as server-sent events. Every error is a JSON `{"error": "one line"}`, never a traceback.

It serves only this machine's page: a request whose `Host` is not a loopback name is refused
(a web page elsewhere cannot reach it through DNS rebinding), and a POST must be JSON from
this origin (a form on another site cannot post here).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from loguru import logger
from starlette.concurrency import run_in_threadpool

from routing.errors import (
    BadInput,
    BrokerError,
    InternalExchange,
    PropertyError,
    RoutingError,
    TopologyError,
    UnknownExchange,
)
from routing.ui._playground import Playground
from routing.urls import one_line

__all__ = ["LOOPBACK", "create_app", "depth_events"]

LOOPBACK = ("127.0.0.1", "localhost", "::1")
_REFUSED_INPUT = (BadInput, TopologyError, PropertyError, UnknownExchange, InternalExchange)


def _error(status: int, text: str) -> JSONResponse:
    return JSONResponse({"error": one_line(text)}, status, headers={"Cache-Control": "no-store"})


def _answer(exc: Exception) -> JSONResponse:
    """The one way an error reaches the page: a status and one line, no password, no traceback."""
    if isinstance(exc, _REFUSED_INPUT):
        return _error(400, str(exc))
    if isinstance(exc, BrokerError):
        return _error(502, str(exc))
    if isinstance(exc, RoutingError):
        return _error(400, str(exc))
    if isinstance(exc, RecursionError):
        return _error(400, "input nested too deeply")
    logger.opt(exception=exc).debug("unexpected error")
    return _error(500, f"unexpected error: {type(exc).__name__}: {exc}")


async def depth_events(
    playground: Playground, interval: float, disconnected: Callable[[], Awaitable[bool]]
) -> AsyncIterator[str]:
    """Server-sent events: `depths` ({version, depths}) at once and whenever a depth or the
    drawn topology changes, a comment every 15 s otherwise, until the client goes."""
    last: Any = None
    quiet = 0.0
    while not await disconnected():
        try:
            version, depths = await run_in_threadpool(playground.depths)
        except Exception as exc:
            yield f"event: problem\ndata: {json.dumps({'error': one_line(str(exc))})}\n\n"
            await asyncio.sleep(max(interval, 1.0))
            continue
        if (version, depths) != last:
            last, quiet = (version, depths), 0.0
            yield f"event: depths\ndata: {json.dumps({'version': version, 'depths': depths})}\n\n"
        elif quiet >= 15:
            quiet = 0.0
            yield ": still here\n\n"
        quiet += interval
        await asyncio.sleep(interval)


def create_app(
    playground: Playground, *, interval: float = 0.4, hosts: tuple[str, ...] = LOOPBACK, close: bool = True
) -> FastAPI:
    """The app over `playground` (closed with the app's lifespan when `close`). `hosts`: the
    names a request's `Host` may give (the address served on, when it is not loopback)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if close:
                await run_in_threadpool(playground.close)

    app = FastAPI(title="routing ui", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.mount("/static", StaticFiles(packages=[("routing.ui", "static")]), name="static")

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        host = urlsplit(f"//{request.headers.get('host', '')}").hostname or ""
        if host not in hosts:
            return _error(403, f"this server answers requests for {', '.join(hosts)} only, not {host!r}")
        if request.method == "POST":
            origin = request.headers.get("origin")
            if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
                return _error(403, f"a page from {origin} cannot post here")
            if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
                return _error(415, "send JSON (content-type: application/json)")
        try:
            return await call_next(request)
        except Exception as exc:  # what a handler did not catch, and the JSON it could not read
            return _answer(exc)

    async def call(function: Callable[..., dict[str, Any]], *args: Any) -> JSONResponse:
        try:
            return JSONResponse(
                await run_in_threadpool(function, *args), headers={"Cache-Control": "no-store"}
            )
        except Exception as exc:
            return _answer(exc)

    async def form(request: Request) -> dict[str, Any]:
        try:
            data = json.loads(await request.body())
        except (ValueError, RecursionError):
            raise BadInput("the request is not JSON") from None
        if not isinstance(data, dict):
            raise BadInput("the request is not a JSON object")
        return data

    @app.get("/")
    async def page() -> Response:
        from importlib.resources import files

        html = (files("routing.ui") / "static" / "index.html").read_text(encoding="utf-8")
        return Response(html, media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-store"})

    @app.get("/api/state")
    async def state() -> JSONResponse:
        return await call(playground.view)

    @app.post("/api/publish")
    async def publish(request: Request) -> JSONResponse:
        return await call(playground.publish, await form(request))

    @app.post("/api/profile")
    async def set_profile(request: Request) -> JSONResponse:
        return await call(playground.set_profile, (await form(request)).get("profile"))

    @app.post("/api/load")
    async def load(request: Request) -> JSONResponse:
        name = (await form(request)).get("name", "")
        if not isinstance(name, str):
            return _error(400, "name: expected a demo's name, or empty for the starting topology")
        return await call(playground.load, name)

    @app.post("/api/peek")
    async def peek(request: Request) -> JSONResponse:
        return await call(playground.peek, (await form(request)).get("queue"))

    @app.post("/api/purge")
    async def purge(request: Request) -> JSONResponse:
        return await call(playground.purge, (await form(request)).get("queue"))

    @app.get("/api/events")
    async def events(request: Request) -> StreamingResponse:
        stream = depth_events(playground, interval, request.is_disconnected)
        return StreamingResponse(
            stream, media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )

    return app
