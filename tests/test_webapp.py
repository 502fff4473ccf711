"""The web app (examples/webapp): the endpoint through an ASGI client on the embedded broker,
a real server (uvicorn) on the embedded broker and on RabbitMQ with a worker of its own, and
the page in headless Chromium (Debian's, driven by Playwright; no browser download)."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from routing.embedded import forget
from routing.transport import open_transport

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
try:
    import fastapi  # noqa: F401
    import httpx
    from PIL import Image
except ImportError:  # CI installs the extra: there, a missing package is a failure
    if IN_CI:
        raise
    pytest.skip("the web app needs its extra: pip install -e '.[webapp]'", allow_module_level=True)

ROOT = Path(__file__).parents[1]
BIN = Path(sys.executable).parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip
T = TypeVar("T")


def png(width: int = 640, height: int = 480) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


@pytest.fixture
def storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The storage folder of this test (the worker reads $ROUTING_STORAGE too)."""
    monkeypatch.setenv("ROUTING_STORAGE", str(tmp_path / "storage"))
    return tmp_path / "storage"


@pytest.fixture
def url(unique: str) -> Iterator[str]:
    yield f"memory://{unique}"
    forget(f"memory://{unique}")


@pytest.fixture(params=["memory", pytest.param("rabbitmq", marks=pytest.mark.broker)])
def either(request: pytest.FixtureRequest) -> str:
    """The test runs twice: on an embedded broker of its own, then in a RabbitMQ vhost of its own."""
    return str(request.getfixturevalue("url" if request.param == "memory" else "vhost_url"))


def serve(api: Any, body: Callable[[httpx.AsyncClient], Awaitable[T]]) -> T:
    """Run `body` with a client of `api`, inside the app's lifespan (startup, then shutdown)."""

    async def main() -> T:
        async with api.router.lifespan_context(api):
            transport = httpx.ASGITransport(app=api)
            async with httpx.AsyncClient(transport=transport, base_url="http://webapp") as client:
                return await body(client)

    return asyncio.run(main())


async def upload(
    client: httpx.AsyncClient,
    data: bytes | None = None,
    *,
    name: str = "cat.png",
    content_type: str = "image/png",
    width: object = 320,
    height: object = 200,
) -> httpx.Response:
    files = {"file": (name, png() if data is None else data, content_type)}
    return await client.post("/jobs/resize", files=files, data={"width": str(width), "height": str(height)})


async def settled(client: httpx.AsyncClient, job_id: str, timeout: float = 20.0) -> dict[str, Any]:
    """The job's status once it is no longer queued."""
    deadline = time.monotonic() + timeout
    while True:
        answer = await client.get(f"/jobs/{job_id}")
        assert answer.status_code == 200, answer.text
        job: dict[str, Any] = answer.json()
        if job["status"] != "queued" or time.monotonic() > deadline:
            return job
        await asyncio.sleep(0.05)


def uploads(storage: Path) -> list[str]:
    return sorted(p.name for p in (storage / "uploads").iterdir())


# ------------------------------------------------------------------ the endpoint, in process


def test_a_job_is_accepted_at_once_then_resized_keeping_the_aspect(either: str, storage: Path) -> None:
    from examples.webapp.app import create_app

    async def body(client: httpx.AsyncClient) -> None:
        answer = await upload(client, png(640, 480), width=320, height=200)
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["id"]
        job = await settled(client, job_id)
        assert job == {
            "id": job_id,
            "status": "done",
            "width": 267,
            "height": 200,
            "image": f"/jobs/{job_id}/image",
        }
        image = await client.get(job["image"])
        assert image.status_code == 200
        assert image.headers["content-type"] == "image/png"
        assert size_of(image.content) == (267, 200)

    serve(create_app(either, worker=True), body)


def test_the_job_waits_queued_until_a_worker_takes_it(either: str, storage: Path) -> None:
    from examples.webapp.app import create_app

    async def body(client: httpx.AsyncClient) -> None:
        answer = await upload(client)
        assert answer.status_code == 202
        job_id = answer.json()["id"]
        assert (await client.get(f"/jobs/{job_id}")).json() == {"id": job_id, "status": "queued"}
        assert (await client.get(f"/jobs/{job_id}/image")).status_code == 404
        with open_transport(either) as transport:
            delivery = transport.get("resize")
        assert delivery is not None
        assert b'"task.resize_image"' in delivery.body and job_id.encode() in delivery.body

    serve(create_app(either, worker=False), body)


def test_a_picture_the_worker_cannot_read_fails_with_the_reason(url: str, storage: Path) -> None:
    from examples.webapp.app import create_app

    async def body(client: httpx.AsyncClient) -> None:
        answer = await upload(client, b"not a png at all", name="broken.png")
        assert answer.status_code == 202
        job = await settled(client, answer.json()["id"])
        assert job["status"] == "failed"
        assert "not an image" in job["reason"]

    serve(create_app(url), body)


@pytest.mark.parametrize(
    ("change", "status", "says"),
    [
        ({"content_type": "text/plain", "name": "a.txt"}, 415, "not an image type"),
        ({"data": b""}, 422, "empty"),
        ({"data": b"x" * 2001}, 413, "over the 2000-byte limit"),
        ({"width": 0}, 422, "width must be between 1 and 65535"),
        ({"height": 65536}, 422, "height must be between 1 and 65535"),
        ({"width": "wide"}, 422, "int"),
        ({"height": ""}, 422, "height"),
    ],
)
def test_a_bad_request_is_refused_and_nothing_is_stored_or_queued(
    url: str, storage: Path, change: dict[str, Any], status: int, says: str
) -> None:
    from examples.webapp.app import create_app

    async def body(client: httpx.AsyncClient) -> None:
        answer = await upload(client, **change)
        assert answer.status_code == status, answer.text
        assert says in answer.text
        assert uploads(storage) == []
        with open_transport(url) as transport:
            assert transport.message_count("resize") == 0

    serve(create_app(url, worker=False, max_bytes=2000), body)


def test_a_request_over_the_limit_is_refused_before_it_is_read(url: str, storage: Path) -> None:
    from examples.webapp.app import create_app

    async def body(client: httpx.AsyncClient) -> None:
        answer = await upload(client, b"x" * 100_000)
        assert answer.status_code == 413, answer.text
        assert "over the 67536-byte limit" in answer.text
        assert uploads(storage) == []

        async def chunks() -> Any:
            yield b"--x--\r\n"

        unsized = await client.post("/jobs/resize", content=chunks())  # chunked: no length
        assert unsized.status_code == 411, unsized.text

    serve(create_app(url, worker=False, max_bytes=2000), body)


def test_the_file_name_is_made_safe(url: str, storage: Path) -> None:
    from examples.webapp.app import create_app
    from examples.webapp.jobs import safe_name

    assert safe_name("../../etc/pass wd.png", "image/png") == "pass_wd.png"
    assert safe_name("C:\\Users\\me\\.hidden.jpeg", "image/jpeg") == "hidden.jpeg"
    assert safe_name("report.exe", "image/gif") == "report.exe.gif"
    assert safe_name(None, "image/webp") == "upload.webp"
    assert len(safe_name("a" * 500 + ".png", "image/png")) <= 84

    async def body(client: httpx.AsyncClient) -> None:
        answer = await upload(client, name="../../../evil name.png")
        assert answer.status_code == 202
        assert uploads(storage) == [f"{answer.json()['id']}-evil_name.png"]

    serve(create_app(url, worker=False), body)


def test_an_unknown_job_is_404(url: str, storage: Path) -> None:
    from examples.webapp.app import create_app

    async def body(client: httpx.AsyncClient) -> None:
        for job_id in ("0123456789abcdef", ".hidden", "a" * 200, "..%2F..%2Fetc"):
            assert (await client.get(f"/jobs/{job_id}")).status_code == 404, job_id
            assert (await client.get(f"/jobs/{job_id}/image")).status_code == 404, job_id

    serve(create_app(url, worker=False), body)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ("no queue", "(returned)"),  # mandatory: no queue is bound, the job comes back
        ("full queue", "(nacked)"),  # a full queue that rejects publishes: the broker nacks
        ("no exchange", "the job"),  # RabbitMQ closes the channel (404), the embedded broker refuses
    ],
)
def test_a_job_the_broker_does_not_take_is_503_and_its_upload_is_removed(
    either: str, storage: Path, change: str, says: str
) -> None:
    from examples.webapp.app import create_app
    from routing import Exchange, Queue, Topology

    async def body(client: httpx.AsyncClient) -> None:
        with open_transport(either) as transport:
            if change == "no exchange":
                transport.delete_exchange("jobs")
            else:
                transport.delete_queue("resize")
            if change == "full queue":
                jobs, full = (
                    Exchange("jobs", "direct"),
                    Queue("resize", max_length=0, overflow="reject-publish"),
                )
                transport.declare(Topology.of(jobs, full, jobs.bind(full, "resize")))
        answer = await upload(client)
        assert answer.status_code == 503, answer.text
        assert "the broker" in answer.text and says in answer.text, answer.text
        assert uploads(storage) == []

    serve(create_app(either, worker=False), body)


def test_a_job_not_confirmed_in_time_is_503(either: str, storage: Path) -> None:
    from examples.webapp.app import create_app

    async def body(client: httpx.AsyncClient) -> None:
        answer = await upload(client)
        assert answer.status_code == 503
        assert "did not confirm the job within 0 s" in answer.text
        assert uploads(storage) == []

    serve(create_app(either, worker=False, confirm_timeout=0), body)


def test_the_page_is_served(url: str, storage: Path) -> None:
    from examples.webapp.app import create_app

    async def body(client: httpx.AsyncClient) -> None:
        page = await client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert 'fetch("/jobs/resize"' in page.text

    serve(create_app(url, worker=False), body)


# ------------------------------------------------------------------ a real server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(process: subprocess.Popen[str], base: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{process.communicate()[1][-3000:]}")
        try:
            if httpx.get(f"{base}/", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"the server did not answer at {base} within {timeout:g} s")


def stop(process: subprocess.Popen[str], *, server: bool = False) -> str:
    """SIGTERM, then its stderr. A worker exits 0; uvicorn ends by the signal it caught, once
    its shutdown (the app's lifespan: worker stopped, transport closed) is complete."""
    process.terminate()
    try:
        _, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
    assert "Traceback" not in err, err[-3000:]
    if server:
        assert process.returncode in (0, -signal.SIGTERM), err[-3000:]
        assert "Application shutdown complete" in err, err[-3000:]
    else:
        assert process.returncode == 0, err[-3000:]
    return err


def environment(url: str, storage: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "ROUTING_URL"}
    return {**env, "ROUTING_URL": url, "ROUTING_STORAGE": str(storage), "PYTHONPATH": str(ROOT)}


@pytest.fixture
def server(request: pytest.FixtureRequest, storage: Path) -> Iterator[str]:
    """`uvicorn examples.webapp.app:app` on a free port, on the broker the test names with
    `request.param` (memory:// in the test's own name unless given); its base URL."""
    url: str = getattr(request, "param", None) or f"memory://{request.getfixturevalue('unique')}"
    if url == "rabbitmq":
        url = request.getfixturevalue("vhost_url")
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "uvicorn"), "examples.webapp.app:app", "--port", str(port), "--log-level", "info"],
        cwd=ROOT, env=environment(url, storage), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(process, base)
        request.node.broker_url = url
        yield base
    finally:
        stop(process, server=True)


def resize_through(base: str) -> None:
    with httpx.Client(base_url=base, timeout=10) as client:
        answer = client.post(
            "/jobs/resize",
            files={"file": ("wide.png", png(800, 200), "image/png")},
            data={"width": "100", "height": "100"},
        )
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["id"]
        deadline = time.monotonic() + 30
        job = client.get(f"/jobs/{job_id}").json()
        while job["status"] == "queued" and time.monotonic() < deadline:
            time.sleep(0.1)
            job = client.get(f"/jobs/{job_id}").json()
        assert job["status"] == "done", job
        assert size_of(client.get(job["image"]).content) == (100, 25)


def test_a_real_server_on_the_embedded_broker_resizes_in_process(server: str) -> None:
    resize_through(server)


@pytest.mark.broker
@pytest.mark.parametrize("server", ["rabbitmq"], indirect=True)
def test_a_real_server_on_rabbitmq_with_a_worker_apart(
    server: str, request: pytest.FixtureRequest, storage: Path
) -> None:
    url = request.node.broker_url
    worker = subprocess.Popen(
        [str(BIN / "routing"), "worker", "examples.image_resizer:app", "--queue", "resize", "--url", url],
        cwd=ROOT, env=environment(url, storage), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        resize_through(server)
    finally:
        stop(worker)


# ------------------------------------------------------------------ the page, in a browser


@pytest.fixture(scope="module")
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        if IN_CI:
            pytest.fail(f"{CHROMIUM} is missing: CI must run the browser test (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    pytest.importorskip("playwright", reason="the page test needs playwright (the webapp extra)")
    return CHROMIUM


def test_the_page_uploads_a_picture_and_shows_it_resized(server: str, chromium: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    picture = tmp_path / "photo.png"
    picture.write_bytes(png(600, 900))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(server)
            page.set_input_files("#file", str(picture))
            page.fill("#width", "300")
            page.fill("#height", "300")
            page.click("#submit")
            expect(page.locator("#status")).to_have_text("done", timeout=30_000)
            expect(page.locator("#size")).to_have_text("200 x 300", timeout=10_000)
            natural = page.eval_on_selector("#resized", "img => [img.naturalWidth, img.naturalHeight]")
            assert natural == [200, 300]
        finally:
            browser.close()
