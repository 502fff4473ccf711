"""A definitions file whose entities all live in one vhost is read for that vhost (issue 12, item 30)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from routing.cli import main
from routing.definitions import dump_definitions, load_definitions
from routing.topology import Exchange, Queue, Topology

SHOP = Topology.of(
    Exchange("orders", "topic"), Queue("billing"), Exchange("orders", "topic").bind(Queue("billing"), "#")
)


@pytest.fixture
def shop_file(tmp_path: Path) -> str:
    path = tmp_path / "definitions.json"
    path.write_text(json.dumps(dump_definitions(SHOP, vhost="shop")))
    return str(path)


@pytest.mark.parametrize(
    "args",
    [
        ["explain", "{file}", "--exchange", "orders", "--routing-key", "a"],
        ["graph", "{file}"],
        ["export", "{file}"],
        ["asyncapi", "{file}"],
    ],
)
def test_the_files_one_vhost_is_used(shop_file: str, args: list[str]) -> None:
    result = CliRunner().invoke(main, [a.format(file=shop_file) for a in args])
    assert result.exit_code == 0, result.output
    assert "billing" in result.stdout
    if args[0] == "export":
        exported = json.loads(result.stdout)
        assert {q["vhost"] for q in exported["queues"]} == {"shop"}
    if args[0] == "asyncapi":
        channel = json.loads(result.stdout)["channels"]["queue.billing"]
        assert channel["bindings"]["amqp"]["queue"]["vhost"] == "shop"


def test_an_explicit_vhost_still_decides(shop_file: str) -> None:
    result = CliRunner().invoke(main, ["graph", shop_file, "--vhost", "/"])
    assert result.exit_code == 1
    assert "nothing in vhost '/'; the file has vhost 'shop'" in result.stderr


def test_several_vhosts_need_a_choice() -> None:
    both = dump_definitions(SHOP, vhost="a")
    for section, items in dump_definitions(SHOP, vhost="b").items():
        if isinstance(items, list):
            both[section] = [*both.get(section, []), *items]
    assert load_definitions(both, vhost="b") == SHOP
    with pytest.raises(Exception, match="nothing in vhost '/'"):
        load_definitions(both)
