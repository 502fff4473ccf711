"""`routing explain`, `routing export`, `routing graph` through click's CliRunner."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from routing import Exchange, Queue, Topology, explain
from routing.cli import main
from routing.cli._shared import parse_header
from routing.definitions import dump_definitions, load_definitions
from routing.graph import markdown, mermaid
from routing.loading import load_topology

ROOT = Path(__file__).parents[1]
SHOP_FILE = str(ROOT / "tests" / "data" / "definitions" / "shop_management.json")
SHOP_REF = "examples.shop_topology:topology"


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def fails_cleanly(result: Result, *expected: str) -> str:
    """Exit code 1, one `Error:` line naming what is wrong, no traceback."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # a ClickException, not a crash
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for text in expected:
        assert text in lines[0]
    return lines[0]


@pytest.fixture
def in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from the repository root, as a user would, and leave sys.path as it was."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "path", list(sys.path))


@pytest.fixture
def module_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory for throwaway topology modules."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    return tmp_path


def write_module(directory: Path, body: str) -> str:
    """A module with a unique name (imports are cached per name) holding `body`."""
    name = f"topo_{uuid.uuid4().hex[:8]}"
    (directory / f"{name}.py").write_text(body, encoding="utf-8")
    return name


HEADERS_MODULE = """
from routing import Exchange, Queue, Topology
h = Exchange("h", "headers")
ints, flags, words = Queue("ints"), Queue("flags"), Queue("words")
topology = Topology.of(
    h.bind(ints, headers={"n": 1}),
    h.bind(flags, headers={"flag": True}),
    h.bind(words, headers={"w": "1"}),
    [h, ints, flags, words],
)
"""


# ---------------------------------------------------------------- explain


def test_explain_json_is_queues_and_trace_exactly(in_repo: None) -> None:
    result = run(
        "explain",
        SHOP_REF,
        "--exchange",
        "shop.events",
        "--routing-key",
        "order.created",
        "-H",
        "region=eu",
        "--json",
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert list(out) == ["queues", "trace"]
    assert out["queues"] == ["audit.eu", "orders.created"]
    shop = load_topology(SHOP_REF)
    expected = explain(shop, "shop.events", "order.created", {"region": "eu"})
    assert out["trace"] == [step.as_dict() for step in expected.trace]
    assert {"exchange", "matched", "reason"} <= set(out["trace"][0])


def test_explain_human_output_lists_queues_then_marks_matched_steps(in_repo: None) -> None:
    result = run("explain", SHOP_REF, "-e", "shop.events", "-k", "order.created")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "A message to 'shop.events' with key 'order.created' reaches 1 queue:"
    assert lines[1] == "  orders.created"
    assert "  + shop.events -> orders.created: 'order.created' matches 'order.created'" in lines
    assert "    shop.events -> billing: 'order.*.paid' does not match 'order.created'" in lines
    assert "  + shop.events -> shop.audit (exchange): 'order.#' matches 'order.created'" in lines


def test_explain_unroutable_and_alternate_exchange(in_repo: None) -> None:
    result = run("explain", SHOP_REF, "-e", "shop.events", "-k", "nothing.here", "--json")
    out = json.loads(result.output)
    assert out["queues"] == ["unrouted"]
    assert {
        "exchange": "shop.events",
        "matched": True,
        "reason": "nothing matched: alternate exchange 'shop.unrouted'",
    } in out["trace"]
    dropped = run("explain", SHOP_REF, "-e", "shop.dlx", "-k", "nope")
    assert "reaches no queue" in dropped.output.splitlines()[0]


@pytest.mark.parametrize(
    ("header", "queue"),
    [("n=1", "ints"), ("flag=true", "flags"), ('w="1"', "words"), ("n=1.0", "ints")],
)
def test_header_values_parse_as_json_when_they_parse(module_dir: Path, header: str, queue: str) -> None:
    name = write_module(module_dir, HEADERS_MODULE)
    # n=1.0 reaching the int binding is RabbitMQ 3.10's rule (Erlang ==): asked of 3.10 explicitly.
    result = run("explain", f"{name}:topology", "-e", "h", "--header", header, "--json", "--rabbitmq", "3.10")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["queues"] == [queue]


def test_header_strings_stay_strings_and_do_not_match_numbers(module_dir: Path) -> None:
    name = write_module(module_dir, HEADERS_MODULE)
    result = run("explain", f"{name}:topology", "-e", "h", "-H", "n=one", "-H", "flag=True", "--json")
    assert json.loads(result.output)["queues"] == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("n=1", ("n", 1)),
        ("flag=true", ("flag", True)),
        ("region=eu", ("region", "eu")),
        ('s="1"', ("s", "1")),
        ("x=null", ("x", None)),
        ("list=[1, 2]", ("list", [1, 2])),
        ("eq=a=b", ("eq", "a=b")),
        ("empty=", ("empty", "")),
        ("nan=NaN", ("nan", "NaN")),
        ("f=1.5", ("f", 1.5)),
    ],
)
def test_parse_header(text: str, expected: tuple[str, Any]) -> None:
    assert parse_header(text) == expected


def test_header_without_equals_is_a_usage_error(in_repo: None) -> None:
    result = run("explain", SHOP_REF, "-e", "shop.audit", "--header", "region")
    assert result.exit_code == 2
    assert "'region' is not NAME=VALUE" in result.output


def test_unknown_exchange_is_one_line_exit_1(in_repo: None) -> None:
    line = fails_cleanly(
        run("explain", SHOP_REF, "-e", "shop.nope", "-k", "x"), "unknown exchange 'shop.nope'"
    )
    assert "'shop.events'" in line  # it names the exchanges there are


def test_explain_reads_a_definitions_file_for_a_vhost() -> None:
    # shop.audit is internal: RabbitMQ refuses a publish to it, so the message goes in through
    # shop.events (issue 12 item 33: this test once explained a publish to shop.audit itself).
    args = ("-e", "shop.events", "-k", "order.created", "-H", "big=true", "--json")
    result = run("explain", SHOP_FILE, "--vhost", "shop", *args)
    assert result.exit_code == 0, result.output
    assert "audit.big-orders" in json.loads(result.output)["queues"]
    # The file's one vhost is the default (issue 12, item 30: failing here was wrong).
    implied = run(
        "explain", SHOP_FILE, "-e", "shop.events", "-k", "order.created", "-H", "big=true", "--json"
    )
    assert "audit.big-orders" in json.loads(implied.output)["queues"]
    fails_cleanly(
        run("explain", SHOP_FILE, "--vhost", "/", "-e", "shop.events"), "nothing in vhost '/'", "'shop'"
    )


def test_bad_file_is_one_line_exit_1(tmp_path: Path) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text('{"queues": [', encoding="utf-8")
    fails_cleanly(run("explain", str(bad), "-e", "x"), "broken.json", "not valid JSON")
    fails_cleanly(run("graph", str(tmp_path / "missing.json")), "missing.json: no such file")


# ------------------------------------------------------------ references


def test_module_reference_attribute_or_factory(module_dir: Path) -> None:
    name = write_module(module_dir, HEADERS_MODULE + "\ndef build():\n    return topology\n")
    assert load_topology(f"{name}:topology") == load_topology(f"{name}:build")
    assert [q.name for q in load_topology(f"{name}:build").queues] == ["flags", "ints", "words"]


def test_module_reference_in_a_package_with_a_dotted_attribute(module_dir: Path) -> None:
    package = f"pkg_{uuid.uuid4().hex[:8]}"
    (module_dir / package).mkdir()
    (module_dir / package / "__init__.py").write_text("", encoding="utf-8")
    (module_dir / package / "shop.py").write_text(
        "from routing import Queue, Topology\nclass Holder:\n    topology = Topology.of(Queue('q'))\n",
        encoding="utf-8",
    )
    assert load_topology(f"{package}.shop:Holder.topology") == Topology.of(Queue("q"))


@pytest.mark.parametrize(
    ("body", "attribute", "expected"),
    [
        ("x = 1\n", "missing", "has no attribute 'missing'"),
        ("x = 1\n", "x", "is of type int, not a Topology"),
        ("def f(a):\n    return a\n", "f", "f() needs arguments"),
        ("def f():\n    return 3\n", "f", "f() returned type int, not a Topology"),
        ("def f():\n    raise RuntimeError('boom')\n", "f", "calling f() failed: RuntimeError: boom"),
        ("from routing import Queue\nq = Queue('bad', type='quorum', durable=False)\n", "q", "importing"),
        ("import no_such_dependency_xyz\n", "x", "importing"),
    ],
)
def test_bad_module_references_are_one_line(
    module_dir: Path, body: str, attribute: str, expected: str
) -> None:
    name = write_module(module_dir, body)
    line = fails_cleanly(run("graph", f"{name}:{attribute}"), f"{name}:{attribute}", expected)
    assert "Traceback" not in line


def test_missing_module_and_a_path_that_is_neither(module_dir: Path) -> None:
    fails_cleanly(
        run("export", "no_such_module_xyz:topology"), "no module named 'no_such_module_xyz'", str(module_dir)
    )
    fails_cleanly(run("export", "shop.topology"), "no such file", "module:attribute")


def test_importing_a_module_that_builds_an_invalid_topology_names_the_problem(module_dir: Path) -> None:
    name = write_module(
        module_dir, "from routing import Queue\nq = Queue('bad', type='quorum', durable=False)\n"
    )
    fails_cleanly(run("export", f"{name}:q"), "TopologyError", "quorum queues are always durable")


# ---------------------------------------------------------- export, graph


def test_export_prints_definitions_that_load_back(in_repo: None) -> None:
    result = run("export", SHOP_REF, "--vhost", "shop")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    shop = load_topology(SHOP_REF)
    assert printed == dump_definitions(shop, vhost="shop")
    assert load_definitions(printed, vhost="shop") == shop


def test_export_refuses_exclusive_queues_unless_skipped(module_dir: Path) -> None:
    name = write_module(
        module_dir,
        "from routing import Exchange, Queue, Topology\n"
        "x = Exchange('x', 'fanout')\n"
        "topology = Topology.of(x, Queue('mine', exclusive=True), x.bind('mine'))\n",
    )
    fails_cleanly(run("export", f"{name}:topology"), "'mine' is exclusive", "--skip-exclusive")
    result = run("export", f"{name}:topology", "--skip-exclusive")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "exchanges": dump_definitions(Topology.of(Exchange("x", "fanout")))["exchanges"],
        "queues": [],
        "bindings": [],
    }


def test_export_warns_about_void_values_rabbitmq_will_not_import(module_dir: Path) -> None:
    name = write_module(
        module_dir,
        "from routing import Exchange, Queue, Topology\n"
        "h, q = Exchange('h', 'headers'), Queue('q')\n"
        "topology = Topology.of(h, q, h.bind(q, headers={'region': None}))\n",
    )
    result = CliRunner().invoke(main, ["export", f"{name}:topology"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["bindings"][0]["arguments"] == {"region": None}
    assert "binding 'h' -> 'q' argument 'region'" in result.stderr


def test_graph_prints_mermaid_or_a_markdown_fence(in_repo: None) -> None:
    shop = load_topology(SHOP_REF)
    assert run("graph", SHOP_REF).output == mermaid(shop)
    assert run("graph", SHOP_REF, "--markdown").output == markdown(shop)
    assert run("graph", SHOP_FILE, "--vhost", "shop").output == mermaid(shop)


@pytest.mark.parametrize("command", ["explain", "export", "graph"])
def test_help_has_an_example(command: str) -> None:
    result = run(command, "--help")
    assert result.exit_code == 0
    assert "Example" in result.output
    assert f"routing {command} " in result.output


def test_explain_takes_the_release(module_dir: Path) -> None:
    name = write_module(module_dir, HEADERS_MODULE)
    on_310 = run("explain", f"{name}:topology", "-e", "h", "-H", "n=1.0", "--json", "--rabbitmq", "3.10.8")
    on_40 = run("explain", f"{name}:topology", "-e", "h", "-H", "n=1.0", "--json", "--rabbitmq", "4.0")
    assert json.loads(on_310.output)["queues"] == ["ints"]
    assert json.loads(on_40.output)["queues"] == []  # 4.0 compares 1 and 1.0 with =:=
    text = run("explain", f"{name}:topology", "-e", "h", "-H", "n=1", "--rabbitmq", "3.10")
    assert "by the rules of RabbitMQ 3.10 (3.10-3.12)" in text.output
    fails_cleanly(run("explain", f"{name}:topology", "-e", "h", "--rabbitmq", "3.8"), "no profile", "3.10")


def test_explain_reads_the_release_from_the_embedded_broker_url(module_dir: Path, unique: str) -> None:
    name = write_module(module_dir, HEADERS_MODULE)
    url = f"memory://{unique}?rabbitmq=3.10"
    result = run("explain", f"{name}:topology", "-e", "h", "-H", "n=1.0", "--json", "--url", url)
    assert json.loads(result.output)["queues"] == ["ints"]
    clash = run("explain", f"{name}:topology", "-e", "h", "--url", url, "--rabbitmq", "4.0")
    fails_cleanly(clash, "--rabbitmq 4.0 but the broker at --url is RabbitMQ 3.10")
    from routing.embedded import forget

    forget(url)


def test_explain_refuses_a_publish_to_an_internal_exchange(in_repo: None) -> None:
    fails_cleanly(run("explain", SHOP_REF, "-e", "shop.audit"), "'shop.audit' is internal", "403")


TRANSIENT_MODULE = """
from routing import Queue, Topology
topology = Topology.of(Queue("scratch", durable=False))
"""


def test_export_and_graph_check_the_topology_for_a_release(module_dir: Path) -> None:
    ref = f"{write_module(module_dir, TRANSIENT_MODULE)}:topology"
    for command in ("export", "graph"):
        quiet = CliRunner().invoke(main, [command, ref, "--rabbitmq", "3.10"])
        assert quiet.exit_code == 0 and "warning" not in quiet.stderr
        warned = CliRunner().invoke(main, [command, ref, "--rabbitmq", "4.0.5"])
        assert warned.exit_code == 0, warned.output
        assert warned.stderr.splitlines() == [
            "warning: queue 'scratch': RabbitMQ 4.0.5 deprecates a non-durable, non-exclusive queue "
            "(refused from 4.3 on); use a durable queue (with a queue TTL, `expires`, to clean it up) "
            "or an exclusive one"
        ]
        fails_cleanly(run(command, ref, "--rabbitmq", "4.3.0"), "RabbitMQ 4.3.0 refuses 1: queue 'scratch'")
