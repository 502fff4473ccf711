"""The web app's endpoint: requests/s of `POST /jobs/resize` with a small image, and the latency
at a steady 200 requests/s, on the embedded broker and on RabbitMQ.

The server is `uvicorn` in a process of its own, serving examples/webapp with no in-process
worker (`server_app`): what is measured is the endpoint's work (parse the multipart upload,
check it, store it, publish the job, wait for the broker's confirm, answer 202). The load
generator is this process: plain asyncio streams over keep-alive HTTP/1.1 connections, sending a
pre-built multipart request (httpx's own cost, about 1 ms of CPU a request, would have been
the larger part of what was measured on 2 cores).

- requests/s: 16 requests in flight (one per connection), until `n` are answered or 20 s pass.
- latency: an open loop at `rate` requests/s for `seconds` (each request starts on its
  schedule whatever the others do); a request's latency runs from its scheduled start, so a
  server that falls behind shows it (no coordinated omission).

Every answer must be 202; any other is counted as an error. On RabbitMQ the app runs in a
vhost of its own (made and deleted through the management API: the URL's `?management=`,
else port 15672 on its host), so its fixed names (`jobs`, `resize`) meet nothing else.
Run: `python -m bench --web`, or `python -m bench.web_bench [--quick] [--url URL]`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from bench.stats import percentile, summary, table

ROOT = Path(__file__).parents[1]
RATE = 200  # requests/s of the latency run


def server_app() -> Any:
    """The app `uvicorn --factory` serves: the web app without its in-process worker."""
    from examples.webapp.app import create_app

    return create_app(worker=False)


def small_png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (20, 120, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def _admin(url: str, method: str, path: str, body: object = None) -> None:
    """One call to the management API of the broker at the AMQP `url` (its `?management=`,
    else port 15672 on its host), with the URL's credentials."""
    parts = urlsplit(url)
    base = urlsplit(dict(parse_qsl(parts.query)).get("management") or f"http://{parts.hostname}:15672")
    token = base64.b64encode(f"{parts.username}:{parts.password}".encode()).decode()
    request = urllib.request.Request(
        f"{base.scheme}://{base.hostname}:{base.port}/api/{path}",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Basic {token}", "content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10):
        pass


@contextlib.contextmanager
def broker_of_its_own(url: str) -> Iterator[str]:
    """`url` moved to a new embedded broker, or to a new vhost of its RabbitMQ (deleted after)."""
    name = f"bench-web-{uuid.uuid4().hex[:8]}"
    if url.startswith("memory:"):
        yield f"memory://{name}"
        return
    _admin(url, "PUT", f"vhosts/{name}", {})
    user = urlsplit(url).username
    _admin(url, "PUT", f"permissions/{name}/{user}", {"configure": ".*", "write": ".*", "read": ".*"})
    try:
        yield urlsplit(url)._replace(path=f"/{quote(name, safe='')}").geturl()
    finally:
        _admin(url, "DELETE", f"vhosts/{name}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(url: str, storage: Path, log: Path) -> Iterator[str]:
    """uvicorn serving `server_app` on a free port, on the broker at `url`; its base URL."""
    port = _free_port()
    env = {**os.environ, "ROUTING_URL": url, "ROUTING_STORAGE": str(storage), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "uvicorn", "bench.web_bench:server_app", "--factory"]
    command += ["--port", str(port), "--log-level", "warning", "--no-access-log"]
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(process, base, log)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait(process: subprocess.Popen[bytes], base: str, log: Path, timeout: float = 30.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            lines = [line for line in log.read_text().splitlines() if line.strip()]
            why = next((line for line in reversed(lines) if "Error" in line and "^" not in line), "")
            raise RuntimeError(f"the server exited with {process.returncode}: {why.strip()}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{base}/", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"the server did not answer at {base} within {timeout:g} s")


def request_bytes(host: str, image: bytes) -> bytes:
    """One `POST /jobs/resize` as a browser's form sends it (multipart: file, width, height)."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="width"\r\n\r\n32\r\n'.encode(),
        f'--{boundary}\r\nContent-Disposition: form-data; name="height"\r\n\r\n24\r\n'.encode(),
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="small.png"\r\n'
        "Content-Type: image/png\r\n\r\n".encode()
        + image
        + b"\r\n",
        f"--{boundary}--\r\n".encode(),
    ]
    body = b"".join(parts)
    head = (
        f"POST /jobs/resize HTTP/1.1\r\nHost: {host}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class Connection:
    """One keep-alive HTTP/1.1 connection of the load generator: a pre-built request out, the
    status line and a Content-Length body back. Plain asyncio streams: the client's own cost
    stays far below the server's, so the figures are the server's."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
        self.reader, self.writer, self.request = reader, writer, request

    @classmethod
    async def open(cls, base: str, request: bytes) -> Connection:
        parts = urlsplit(base)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        return cls(reader, writer, request)

    async def post(self) -> int:
        self.writer.write(self.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


async def _connections(base: str, count: int) -> list[Connection]:
    request = request_bytes(urlsplit(base).netloc, small_png())
    connections = [await Connection.open(base, request) for _ in range(count)]
    for connection in connections:  # warm-up: the server's first requests, the broker's queue
        for _ in range(3):
            await connection.post()
    return connections


async def throughput(base: str, *, n: int, concurrency: int, limit: float) -> dict[str, Any]:
    """`n` requests, `concurrency` at a time (one per connection), for at most `limit` seconds."""
    connections = await _connections(base, concurrency)
    issued = answered = errors = 0
    start = time.perf_counter()
    deadline = start + limit

    async def worker(connection: Connection) -> None:
        nonlocal issued, answered, errors
        while issued < n and time.perf_counter() < deadline:
            issued += 1
            if await connection.post() == 202:
                answered += 1
            else:
                errors += 1

    await asyncio.gather(*(worker(c) for c in connections))
    seconds = time.perf_counter() - start
    for connection in connections:
        connection.close()
    return {"requests": answered, "errors": errors, "seconds": round(seconds, 2), "rps": answered / seconds}


async def at_rate(base: str, *, rate: int, seconds: float, connections: int = 32) -> dict[str, Any]:
    """An open loop: request i is due at i/rate seconds and goes on the first free connection;
    its latency runs from when it was due (time waiting for a free connection included)."""
    pool = await _connections(base, connections)
    total = int(rate * seconds)
    due: asyncio.Queue[float] = asyncio.Queue()
    latencies: list[float] = []
    errors = 0
    start = time.perf_counter() + 0.05
    for i in range(total):
        due.put_nowait(start + i / rate)

    async def worker(connection: Connection) -> None:
        nonlocal errors
        while not due.empty():
            scheduled = due.get_nowait()
            await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
            if await connection.post() == 202:
                latencies.append((time.perf_counter() - scheduled) * 1000)
            else:
                errors += 1

    await asyncio.wait_for(asyncio.gather(*(worker(c) for c in pool)), seconds + 60)
    elapsed = time.perf_counter() - start
    for connection in pool:
        connection.close()
    return {
        "rate": rate,
        "requests": len(latencies),
        "errors": errors,
        "achieved_rate": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "max_ms": max(latencies),
    }


@contextlib.contextmanager
def serving(url: str) -> Iterator[str]:
    """A server on a fresh broker (or vhost) like `url`, with its own storage; its base URL."""
    with (
        tempfile.TemporaryDirectory(prefix="bench-web-") as folder,
        broker_of_its_own(url) as own,
        server(own, Path(folder) / "storage", Path(folder) / "server.log") as base,
    ):
        yield base


def run(quick: bool, url: str | None) -> list[dict[str, Any]]:
    """One row for the embedded broker, and one for the RabbitMQ at `url` when it is given.
    Both servers run side by side and take turns, round by round (rotating order), so a
    machine busy with other work weighs on each alike; the figures are medians of the rounds."""
    brokers = ["memory://", *([url] if url and url.startswith(("amqp://", "amqps://")) else [])]
    rounds, n, seconds = (1, 300, 2.0) if quick else (3, 1500, 8.0)
    rows: dict[str, dict[str, Any]] = {}
    bases: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        for broker in brokers:
            rows[broker] = {
                "broker": "embedded" if broker == "memory://" else _release(broker),
                "status": "ok",
            }
            try:
                bases[broker] = stack.enter_context(serving(broker))
            except Exception as exc:  # one broker's failure is reported, the other still runs
                rows[broker]["status"] = f"failed: {type(exc).__name__}: {str(exc)[-300:]}"
        measured: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {b: [] for b in bases}
        for r in range(rounds):
            order = list(bases)[r % max(1, len(bases)) :] + list(bases)[: r % max(1, len(bases))]
            for broker in order:
                load = asyncio.run(throughput(bases[broker], n=n, concurrency=16, limit=20))
                steady = asyncio.run(at_rate(bases[broker], rate=RATE, seconds=seconds))
                measured[broker].append((load, steady))
    for broker, runs in measured.items():
        rows[broker].update(
            {
                "rps": summary([load["rps"] for load, _ in runs]),
                "p50_ms": statistics.median(steady["p50_ms"] for _, steady in runs),
                "p99_ms": summary([steady["p99_ms"] for _, steady in runs]),
                "achieved_rate": min(steady["achieved_rate"] for _, steady in runs),
                "requests": sum(load["requests"] + steady["requests"] for load, steady in runs),
                "errors": sum(load["errors"] + steady["errors"] for load, steady in runs),
                "rounds": len(runs),
            }
        )
    return list(rows.values())


def _release(url: str) -> str:
    from bench.peers import Admin

    try:
        connection = Admin(url)
    except Exception:
        return "RabbitMQ (not reachable)"
    try:
        return f"RabbitMQ {connection.server_version}"
    finally:
        connection.close()


def report(rows: list[dict[str, Any]]) -> str:
    lines = []
    for r in rows:
        if r["status"] != "ok":
            lines.append([r["broker"], "-", "", "", "", "", r["status"]])
            continue
        rps, p99 = r["rps"], r["p99_ms"]
        lines.append(
            [
                r["broker"],
                f"{rps['median']:,.0f}",
                f"{rps['min']:,.0f}-{rps['max']:,.0f}",
                f"{r['p50_ms']:.1f}",
                f"{p99['median']:.1f}",
                f"{p99['min']:.0f}-{p99['max']:.0f}",
                f"{r['rounds']} rounds, {r['requests']:,} requests, {r['errors']} not 202, "
                f"the rate held >= {r['achieved_rate']:,.0f}/s",
            ]
        )
    header = [
        "broker",
        "req/s (16 in flight)",
        "min-max",
        f"p50 ms @{RATE}/s",
        f"p99 ms @{RATE}/s",
        "min-max",
        "",
    ]
    return table(header, lines, right=[False, True, True, True, True, True, False])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.web_bench", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--url", default=os.environ.get("ROUTING_URL"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = run(args.quick, args.url)
    print(json.dumps(rows, indent=2) if args.json else report(rows))


if __name__ == "__main__":
    main()
