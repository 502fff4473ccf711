"""`routing ui` (issue 19): the layout, the Playground, its API through an ASGI client, the command,
the page in headless Chromium (Debian's, driven by Playwright; no browser download) on the embedded
broker, and the live-broker mode on RabbitMQ (a vhost of the test's own)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import subprocess
import sys
import threading
import time
import tomllib
import zipfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from click.testing import CliRunner
from rabbit_node import IN_CI

from examples.shop_topology import topology as shop
from routing.cli import main
from routing.cli.ui_command import listening_socket
from routing.errors import BadInput, RoutingError
from routing.topology import Exchange, ExchangeType, Queue, Topology

try:
    import httpx
    import uvicorn

    from routing.ui import Playground, create_app, layout, parse_headers
    from routing.ui._app import depth_events
    from routing.ui._layout import ROW
except ImportError:  # CI installs the extra: there, a missing package is a failure
    if IN_CI:
        raise
    pytest.skip("routing ui needs its extra: pip install -e '.[ui]'", allow_module_level=True)

ROOT = Path(__file__).parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip
T = TypeVar("T")


def headers_topology() -> Topology:
    """A headers binding on n=1: under 3.10's rules a header n=1.0 matches it, under 4.0's not."""
    ex = Exchange("numbers", ExchangeType.HEADERS)
    one = Queue("ones")
    return Topology.of(ex, one, ex.bind(one, match="all", headers={"n": 1}))


@pytest.fixture
def playground() -> Iterator[Playground]:
    pg = Playground(shop, source="examples.shop_topology:topology")
    yield pg
    pg.close()


def through(pg: Playground, body: Callable[[httpx.AsyncClient], Awaitable[T]]) -> T:
    """Run `body` with an ASGI client of the app over `pg` (the playground is closed by the test)."""

    async def run() -> T:
        transport = httpx.ASGITransport(app=create_app(pg, close=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8100") as client:
            return await body(client)

    return asyncio.run(run())


def post(pg: Playground, path: str, data: Any) -> httpx.Response:
    async def body(client: httpx.AsyncClient) -> httpx.Response:
        return await client.post(path, json=data)

    return through(pg, body)


# ------------------------------------------------------------------ the layout


def test_every_entity_is_a_node_and_every_link_an_edge_left_to_right() -> None:
    drawing = layout(shop)
    nodes = {n["id"]: n for n in drawing.nodes}
    assert {n["name"] for n in drawing.nodes if n["kind"] == "queue"} == {q.name for q in shop.queues}
    assert {n["name"] for n in drawing.nodes if n["kind"] == "exchange"} == {e.name for e in shop.exchanges}
    kinds = [e["kind"] for e in drawing.edges]
    assert kinds.count("binding") == len(shop.bindings)
    assert kinds.count("alternate") == 1 and kinds.count("dead-letter") == 1
    labels = {e["label"] for e in drawing.edges}
    assert {
        "order.*.paid",
        'x-match all: region="eu"',
        "x-match any: big=true, priority=9",
        "alternate",
    } <= labels
    for e in drawing.edges:  # no cycle here: every edge goes right
        assert nodes[e["source"]]["x"] < nodes[e["target"]]["x"], e


def test_fifty_entities_get_apart_and_a_cycle_ends() -> None:
    hub = Exchange("hub", ExchangeType.TOPIC)
    regions = [Exchange(f"region.{i}", ExchangeType.DIRECT) for i in range(9)]
    queues = [Queue(f"q.{i}.{j}") for i in range(9) for j in range(4)]
    bindings = [hub.bind(r, f"{r.name}.#") for r in regions]
    bindings += [regions[i].bind(f"q.{i}.{j}", f"k{j}") for i in range(9) for j in range(4)]
    bindings.append(regions[0].bind(hub, "back"))  # exchange-to-exchange cycle
    extra = [Queue(f"spare.{i}") for i in range(4)]
    topology = Topology.of(hub, *regions, *queues, *extra, *bindings)
    assert len(topology.exchanges) + len(topology.queues) == 50
    drawing = layout(topology)
    spots = {(n["x"], n["y"]) for n in drawing.nodes}
    assert len(spots) == 50  # nobody on top of anybody
    assert all(
        abs(a["y"] - b["y"]) >= ROW
        for a in drawing.nodes
        for b in drawing.nodes
        if a is not b and a["x"] == b["x"]
    )
    assert len({n["x"] for n in drawing.nodes}) == 3  # hub, the regions, the queues
    assert drawing.height < 40 * ROW
    column = [n["name"] for n in sorted(drawing.nodes, key=lambda n: n["y"]) if n["name"].startswith("q.")]
    for i in range(9):  # each exchange's queues sit together, beside it
        rows = [k for k, name in enumerate(column) if name.startswith(f"q.{i}.")]
        assert rows == list(range(rows[0], rows[0] + 4)), column
    assert layout(topology) == drawing  # the same every time


def test_headers_are_typed_as_lines_or_a_json_object() -> None:
    assert parse_headers("format=pdf\n n=1 \nbig=true\nlist=[1, 2]") == {
        "format": "pdf", "n": 1, "big": True, "list": [1, 2]
    }  # fmt: skip
    assert parse_headers('{"a": {"b": 1.0}}') == {"a": {"b": 1.0}}
    assert parse_headers("  ") == {}
    for bad in ("region", "=x", "[1]", "{"):
        with pytest.raises(BadInput):
            parse_headers(bad)


# ------------------------------------------------------------------ the API, on the embedded broker


def test_a_publish_lights_its_path_and_is_really_delivered(playground: Playground) -> None:
    answer = post(playground, "/api/publish", {"exchange": "shop.events", "routing_key": "order.created",
                                               "headers": "region=eu\nbig=true"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["queues"] == ["audit.big-orders", "audit.eu", "orders.created"]
    assert result["outcome"] == "confirmed" and result["unroutable"] is False
    assert "queue:audit.eu" in result["lit"]["queues"]
    assert {"exchange:shop.events", "exchange:shop.audit"} <= set(result["lit"]["exchanges"])
    tried = [s for s in result["trace"] if not s["matched"]]
    assert {s["reason"] for s in tried} == {"'order.*.paid' does not match 'order.created'",
                                            "'refund.#' does not match 'order.created'"}  # fmt: skip
    edges = {e["id"]: e for e in playground.view()["drawing"]["edges"]}
    assert {edges[e]["target"] for e in result["lit"]["edges"]} == {
        "exchange:shop.audit", "queue:audit.eu", "queue:audit.big-orders", "queue:orders.created"
    }  # fmt: skip
    assert result["depths"]["audit.eu"] == 1 and result["depths"]["billing"] == 0
    peeked = post(playground, "/api/peek", {"queue": "audit.eu"}).json()
    [message] = peeked["messages"]
    assert message["headers"] == {"region": "eu", "big": True} and message["routing_key"] == "order.created"
    assert peeked["depths"]["audit.eu"] == 1  # peeking puts it back
    assert post(playground, "/api/purge", {"queue": "audit.eu"}).json()["purged"] == 1
    assert playground.depths()[1]["audit.eu"] == 0


def test_the_alternate_exchange_and_cc_and_unroutable(playground: Playground) -> None:
    result = post(
        playground, "/api/publish", {"exchange": "shop.events", "routing_key": "nothing.here"}
    ).json()
    assert result["queues"] == ["unrouted"] and result["alternates"] == ["shop.events"]
    assert "alternate:shop.events" in result["lit"]["edges"]
    assert "alternate exchange of 'shop.events'" in result["verdict"]
    cc = post(
        playground, "/api/publish", {"exchange": "shop.dlx", "routing_key": "x", "cc": "orders.created"}
    ).json()
    assert cc["queues"] == ["dead-letters"] and cc["outcome"] == "confirmed"
    lost = post(playground, "/api/publish", {"exchange": "shop.dlx", "routing_key": "nobody"}).json()
    assert lost["queues"] == [] and lost["unroutable"] is True and lost["outcome"] == "returned"
    assert lost["verdict"].startswith("unroutable")


def test_the_profile_picks_the_rules_and_the_broker_that_follows_them() -> None:
    pg = Playground(headers_topology())
    try:
        message = {"exchange": "numbers", "headers": "n=1.0"}
        assert post(pg, "/api/publish", message).json()["queues"] == []  # 4.0: an int is not a float
        assert post(pg, "/api/profile", {"profile": "3.10"}).json()["profile"] == "3.10"
        routed = post(pg, "/api/publish", message).json()
        assert routed["queues"] == ["ones"] and routed["outcome"] == "confirmed"  # the 3.10 broker agrees
        assert routed["trace"][0]["reason"] == "x-match all: n equal"
        assert post(pg, "/api/profile", {"profile": "3.9"}).status_code == 400
    finally:
        pg.close()


@pytest.mark.parametrize(
    ("path", "data", "expected"),
    [
        ("/api/publish", {"exchange": "nope"}, "no exchange 'nope' in the topology"),
        ("/api/publish", {"exchange": "shop.audit"}, "exchange 'shop.audit' is internal"),
        ("/api/publish", {"exchange": "shop.events", "headers": "region"}, "is not NAME=VALUE"),
        ("/api/publish", {"exchange": "shop.events", "routing_key": 3}, "routing_key: expected text"),
        (
            "/api/publish",
            {"exchange": "shop.events", "headers": '{"a": ' + "[" * 100_000},
            "nested too deeply",
        ),
        ("/api/publish", {"exchange": "shop.events", "headers": "[" * 5000}, "[[[...' is not NAME=VALUE"),
        ("/api/publish", {"exchange": "shop.events", "routing_key": "k" * 300}, "routing"),
        ("/api/peek", {"queue": "elsewhere"}, "no queue 'elsewhere' in the topology"),
        ("/api/purge", {"queue": ["a"]}, "no queue"),
        ("/api/load", {"name": "nope"}, "no demo 'nope'"),
        ("/api/load", {"name": 1}, "name: expected"),
        ("/api/publish", [1], "not a JSON object"),
    ],
)
def test_bad_input_is_one_line_on_the_page(
    playground: Playground, path: str, data: Any, expected: str
) -> None:
    answer = post(playground, path, data)
    assert answer.status_code == 400, answer.text
    assert set(answer.json()) == {"error"} and expected in answer.json()["error"]
    assert "Traceback" not in answer.text and "\n" not in answer.json()["error"]


def test_only_this_machines_json_gets_in(playground: Playground) -> None:
    async def body(client: httpx.AsyncClient) -> list[int]:
        return [
            (await client.get("/api/state", headers={"host": "evil.example:8100"})).status_code,
            (await client.post("/api/purge", json={"queue": "billing"}, headers={"origin": "http://evil.example"})).status_code,
            (await client.post("/api/purge", content="queue=billing", headers={"content-type": "application/x-www-form-urlencoded"})).status_code,
            (await client.post("/api/purge", content="{", headers={"content-type": "application/json"})).status_code,
            (await client.post("/api/purge", json={"queue": "billing"}, headers={"origin": "http://127.0.0.1:8100"})).status_code,
        ]  # fmt: skip

    assert through(playground, body) == [403, 403, 415, 400, 200]


def test_the_page_and_its_files_are_served(playground: Playground) -> None:
    async def body(client: httpx.AsyncClient) -> list[httpx.Response]:
        return [await client.get(p) for p in ("/", "/static/app.js", "/static/style.css", "/api/state")]

    page, script, style, state = through(playground, body)
    assert page.status_code == script.status_code == style.status_code == 200
    assert 'src="/static/app.js"' in page.text and "EventSource" in script.text
    assert not re.search(r"(src|href)=\"(https?:)?//", page.text)  # nothing from elsewhere: works offline
    view = state.json()
    assert view["profiles"] == ["3.10", "4.0"] and view["live"] is False
    assert [d["name"] for d in view["demos"]] == [
        "topic-logs",
        "header-filtering",
        "cache-invalidation",
        "work-queue",
    ]


def test_a_demo_loads_with_its_steps_and_leaving_it_deletes_it(playground: Playground) -> None:
    view = post(playground, "/api/load", {"name": "header-filtering"}).json()
    assert view["demo"] == "header-filtering" and view["queues"] == [
        "demo.attributes.eu-pdf", "demo.attributes.urgent", "demo.attributes.us-csv"
    ]  # fmt: skip
    assert len(view["steps"]) == 6 and view["steps"][4]["headers"]["ce-type"] == "config.changed"
    for step in view["steps"]:
        post(playground, "/api/publish", {**step, "headers": json.dumps(step["headers"])})
    assert playground.depths()[1] == {
        "demo.attributes.eu-pdf": 1,
        "demo.attributes.urgent": 2,
        "demo.attributes.us-csv": 1,
    }
    back = post(playground, "/api/load", {"name": ""}).json()
    assert back["demo"] is None and "billing" in back["queues"]
    assert [q for q in back["depths"] if q.startswith("demo.")] == []


@pytest.mark.parametrize(
    ("demo", "depths"),
    [
        ("topic-logs", {"archive": 6, "billing-team": 2, "pager": 2, "security": 2}),
        ("header-filtering", {"eu-pdf": 1, "urgent": 2, "us-csv": 1}),
        ("cache-invalidation", {"api-1": 4, "api-2": 4, "api-3": 4}),
        ("work-queue", {"resize": 8, "resize.dead": 0}),
    ],
)
def test_every_demo_plays_on_the_page_as_it_runs(demo: str, depths: dict[str, int]) -> None:
    pg = Playground(demo_prefix="p.")
    try:
        steps = pg.load(demo)["steps"]
        for step in steps:
            result = pg.publish({**step, "headers": json.dumps(step["headers"])})
            assert result["outcome"] in ("confirmed", "returned") and result["lit"]["queues"] == [
                f"queue:{q}" for q in result["queues"]
            ]
        shown = {q.removeprefix("p.").removeprefix({"topic-logs": "logs.", "header-filtering": "attributes."}.get(demo, "")): n
                 for q, n in pg.depths()[1].items()}  # fmt: skip
        if demo == "cache-invalidation":
            shown = {
                q.removeprefix("invalidations."): n for q, n in shown.items() if not q.endswith(".overflow")
            }
        assert shown == depths
    finally:
        pg.close()


def test_depth_events_come_at_once_and_on_every_change(playground: Playground) -> None:
    async def run() -> list[str]:
        seen: list[str] = []

        async def gone() -> bool:
            return len(seen) >= 2

        async for event in depth_events(playground, 0.02, gone):
            seen.append(event)
            if len(seen) == 1:
                await asyncio.to_thread(
                    playground.publish, {"exchange": "shop.events", "routing_key": "refund.x"}
                )
        return seen

    first, second = asyncio.run(asyncio.wait_for(run(), 10))
    assert first.startswith("event: depths\n") and '"billing": 0' in first
    assert '"billing": 1' in second


# ------------------------------------------------------------------ the command


def test_a_port_taken_is_one_clear_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(main, ["ui", "--port", str(port)])
    assert result.exit_code == 1
    assert (
        result.output
        == f"Error: port {port} on 127.0.0.1 is taken (another server listens there); pass --port with another number\n"
    )


def test_a_topology_that_cannot_be_read_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["ui", str(tmp_path / "missing.json"), "--port", "0"])
    assert result.exit_code == 1 and result.output.startswith("Error: ") and result.output.count("\n") == 1


def test_the_command_serves_a_demo_on_loopback() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "routing"), "ui", "topic-logs", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        view = wait_for_state(f"http://127.0.0.1:{port}")
        assert view["demo"] == "topic-logs" and len(view["steps"]) == 6
    finally:
        process.terminate()
        out, err = process.communicate(timeout=30)
    assert out.startswith(f"routing ui: http://127.0.0.1:{port}/"), out + err
    assert out.endswith("routing ui: stopped\n") and process.returncode == 0, (
        out + err
    )  # SIGTERM: a clean end
    assert "Traceback" not in err


def wait_for_state(base: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return dict(httpx.get(f"{base}/api/state", timeout=5).json())
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_the_page_is_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    patterns = config["routing.ui"]
    files = sorted(p for p in (ROOT / "routing" / "ui" / "static").iterdir())
    assert files and all(any(p.match(pattern) for pattern in patterns) for p in files)


@pytest.mark.slow
def test_a_wheel_holds_the_page(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("routing-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {"routing/ui/static/index.html", "routing/ui/static/app.js", "routing/ui/static/style.css"} <= set(
        names
    )


# ------------------------------------------------------------------ the page, in a browser


@contextlib.contextmanager
def serving(pg: Playground) -> Iterator[str]:
    """The app over `pg` on uvicorn, in a thread, on a free port of 127.0.0.1."""
    sock = listening_socket("127.0.0.1", 0)
    config = uvicorn.Config(create_app(pg, close=False), log_level="warning", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


@pytest.fixture(scope="module")
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        if IN_CI:
            pytest.fail(f"{CHROMIUM} is missing: CI must run the browser test (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    pytest.importorskip("playwright", reason="the page test needs playwright (the dev extra)")
    return CHROMIUM


@contextlib.contextmanager
def browser_page(chromium: str, base: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 860})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(base)
            yield page
            assert errors == []
        finally:
            browser.close()


def depth(page: Any, queue: str) -> Any:
    return page.locator(f'[data-depth="{queue}"]')


def test_the_topic_logs_demo_then_billing_error_lights_its_queues(chromium: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    pg = Playground()
    try:
        with serving(pg) as base, browser_page(chromium, base) as page:
            expect(page.locator("#empty")).to_be_visible()
            page.click('button.demo[data-demo="topic-logs"]')  # one click: loaded, then played step by step
            expect(page.locator("#demo-status")).to_contain_text("done: 6 messages", timeout=30_000)
            expect(depth(page, "demo.logs.archive")).to_have_text("6")
            expect(depth(page, "demo.logs.pager")).to_have_text("2")
            page.fill("#routing-key", "billing.error")
            page.click("#publish")
            expect(page.locator("#verdict")).to_have_text(
                "reaches 3 queues: demo.logs.archive, demo.logs.billing-team, demo.logs.pager"
            )
            for queue in ("demo.logs.pager", "demo.logs.billing-team", "demo.logs.archive"):
                expect(page.locator(f'[data-node="queue:{queue}"]')).to_have_class(re.compile(r"\blit\b"))
            expect(page.locator('[data-node="queue:demo.logs.security"]')).not_to_have_class(
                re.compile(r"\blit\b")
            )
            expect(depth(page, "demo.logs.pager")).to_have_text("3")
            expect(depth(page, "demo.logs.billing-team")).to_have_text("3")
            expect(depth(page, "demo.logs.archive")).to_have_text("7")
            expect(page.locator("#trace li.missed")).to_have_text(
                ["\u2717 demo.logs \u2192 demo.logs.security: 'auth.*' does not match 'billing.error'"]
            )
            page.screenshot(path=str(tmp_path / "topic-logs.png"))
            page.click('[data-node="queue:demo.logs.pager"]')
            page.click("#peek")
            expect(page.locator("#messages li")).to_have_count(3)
            page.click("#purge")
            expect(depth(page, "demo.logs.pager")).to_have_text("0")
        assert (tmp_path / "topic-logs.png").stat().st_size > 10_000
    finally:
        pg.close()


def test_a_headers_match_an_unroutable_message_and_bad_input_on_the_page(
    chromium: str, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    pg = Playground()
    pg.load("header-filtering")
    try:
        with serving(pg) as base, browser_page(chromium, base) as page:
            expect(page.locator("#demo-status")).to_contain_text("6 messages to publish")
            page.select_option("#exchange", "demo.attributes")
            page.fill("#headers", "format=pdf\nregion=eu")
            page.click("#publish")
            expect(page.locator("#verdict")).to_have_text("reaches 1 queue: demo.attributes.eu-pdf")
            expect(page.locator('[data-node="queue:demo.attributes.eu-pdf"]')).to_have_class(
                re.compile(r"\blit\b")
            )
            expect(depth(page, "demo.attributes.eu-pdf")).to_have_text("1")
            expect(page.locator("#trace li.missed")).to_have_text([
                "\u2717 demo.attributes \u2192 demo.attributes.urgent: x-match any: priority missing, ce-type missing",
                "\u2717 demo.attributes \u2192 demo.attributes.us-csv: x-match all: format differs, region differs",
            ])  # fmt: skip
            page.screenshot(path=str(tmp_path / "headers.png"))

            page.fill("#headers", "format=xml")
            page.click("#publish")
            expect(page.locator("#verdict")).to_have_text(
                "unroutable: no queue; published mandatory, so the broker returned it"
            )
            expect(page.locator(".node.queue.lit")).to_have_count(0)

            page.fill("#headers", "no value here")
            page.click("#publish")
            expect(page.locator("#error")).to_be_visible()
            expect(page.locator("#error-text")).to_have_text(
                "header 'no value here' is not NAME=VALUE (e.g. region=eu)"
            )
            page.screenshot(path=str(tmp_path / "unroutable.png"))
    finally:
        pg.close()


# ------------------------------------------------------------------ live: RabbitMQ, in a vhost of the test's own


def no_password(*texts: str) -> None:
    for text in texts:
        assert "guest:guest" not in text and ":guest@" not in text, text


@pytest.mark.broker
def test_on_rabbitmq_the_page_reads_the_brokers_topology_and_follows_its_release(
    vhost_url: str, rabbitmq_version: str, rabbitmq_profile: str, unique: str
) -> None:
    from routing.transport import open_transport

    with open_transport(vhost_url) as transport:
        transport.declare(shop)
    pg = Playground(url=vhost_url, demo_prefix=f"{unique}.")
    try:
        state = through(pg, lambda client: client.get("/api/state"))
        view = state.json()
        assert view["live"] is True and view["profiles"] == []
        assert view["server_version"] == rabbitmq_version and view["profile"] == rabbitmq_profile
        assert view["queues"] == sorted(q.name for q in shop.queues)  # read through the management API
        routed = post(pg, "/api/publish", {"exchange": "shop.events", "routing_key": "order.created",
                                           "headers": "region=eu\nbig=true"})  # fmt: skip
        assert routed.json()["queues"] == ["audit.big-orders", "audit.eu", "orders.created"]
        assert routed.json()["outcome"] == "confirmed" and routed.json()["depths"]["audit.eu"] == 1
        fallback = post(pg, "/api/publish", {"exchange": "shop.events", "routing_key": "nothing"})
        assert fallback.json()["queues"] == ["unrouted"] and fallback.json()["depths"]["unrouted"] == 1
        lost = post(pg, "/api/publish", {"exchange": "shop.dlx", "routing_key": "nobody"})
        assert lost.json()["outcome"] == "returned" and lost.json()["notes"] == []  # the broker agrees
        peeked = post(pg, "/api/peek", {"queue": "audit.eu"})
        assert peeked.json()["messages"][0]["headers"] == {"region": "eu", "big": True}
        assert peeked.json()["depths"]["audit.eu"] == 1
        purged = post(pg, "/api/purge", {"queue": "audit.eu"})
        assert purged.json()["purged"] == 1
        refused = post(pg, "/api/profile", {"profile": "3.10"})
        assert refused.status_code == 400 and rabbitmq_version in refused.json()["error"]
        demo = post(pg, "/api/load", {"name": "topic-logs"})  # declared on the broker, names of this test's
        assert demo.json()["queues"] == [
            f"{unique}.logs.{c}" for c in ("archive", "billing-team", "pager", "security")
        ]
        billing = post(pg, "/api/publish", {"exchange": f"{unique}.logs", "routing_key": "billing.error"})
        assert billing.json()["depths"][f"{unique}.logs.pager"] == 1
        back = post(pg, "/api/load", {"name": ""})  # the demo is deleted, the broker's topology read again
        assert back.json()["queues"] == sorted(q.name for q in shop.queues)
        no_password(
            *(r.text for r in (state, routed, fallback, lost, peeked, purged, refused, demo, billing, back))
        )
    finally:
        pg.close()
    with open_transport(vhost_url) as transport, pytest.raises(RoutingError):
        transport.message_count(f"{unique}.logs.pager")


@pytest.mark.broker
def test_on_rabbitmq_a_topology_given_is_declared_and_routed_by_the_brokers_rules(
    vhost_url: str, rabbitmq_profile: str
) -> None:
    pg = Playground(headers_topology(), url=vhost_url)
    try:
        result = pg.publish({"exchange": "numbers", "headers": "n=1.0"})
        # 3.10 compares 1 == 1.0; 4.0 does not: the explanation and the broker say the same.
        assert result["queues"] == (["ones"] if rabbitmq_profile == "3.10" else [])
        assert result["outcome"] == ("confirmed" if rabbitmq_profile == "3.10" else "returned")
        assert result["notes"] == []
    finally:
        pg.close()


@pytest.mark.broker
def test_on_rabbitmq_the_page_follows_depths_published_from_elsewhere(vhost_url: str, chromium: str) -> None:
    from playwright.sync_api import expect

    from routing.transport import open_transport

    with open_transport(vhost_url) as transport:
        transport.declare(shop)
    pg = Playground(url=vhost_url)
    try:
        with serving(pg) as base, browser_page(chromium, base) as page:
            expect(page.locator("#broker")).to_contain_text(f"(RabbitMQ {pg.view()['server_version']})")
            expect(page.locator("#profile")).to_be_hidden()
            expect(depth(page, "billing")).to_have_text("0")
            with open_transport(vhost_url) as other:  # another client, not the page
                other.publish("shop.events", "refund.issued", b"{}")
                other.publish("shop.events", "order.eu.paid", b"{}")
                assert other.flush(10) == []
            expect(depth(page, "billing")).to_have_text("2", timeout=10_000)
            assert ":guest@" not in page.content() and "guest:guest" not in page.content()
    finally:
        pg.close()
