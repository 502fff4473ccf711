"""Every demo's and example's AsyncAPI document, held to the official parser (`@asyncapi/parser`
from the npm registry, pinned in tests/node/package-lock.json) on the machine's Node.js: zero
diagnostics of severity error. A broken document shows the parser does catch errors.

tests/node/node_modules is installed (`npm ci`) when missing, as .ci/run does. Without Node.js
the tests skip, except under CI=true, where they fail."""

from __future__ import annotations

import copy
import fcntl
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from examples import resize_worker, shop_topology
from routing import SchemaRegistry, asyncapi_document
from routing.demos import cache_invalidation, header_filtering, topic_logs, work_queue

NODE_DIR = Path(__file__).parent / "node"
SCRIPT = NODE_DIR / "validate_asyncapi.mjs"


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is not on PATH: the AsyncAPI parser runs on Node.js")
        pytest.skip(f"{name} is not on PATH: the AsyncAPI parser runs on Node.js")
    return found


@pytest.fixture(scope="module")
def node() -> str:
    """Node.js, with the parser installed in tests/node (once: a lock keeps parallel runs apart)."""
    found = _tool("node")
    with open(NODE_DIR / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (NODE_DIR / "node_modules" / "@asyncapi" / "parser").is_dir():
            subprocess.run(
                [_tool("npm"), "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
                cwd=NODE_DIR,
                check=True,
                capture_output=True,
                timeout=300,
            )
    return found


def parse(node: str, tmp_path: Path, docs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The parser's verdict on each document: {name: {parsed, counts, diagnostics}}."""
    files = {}
    for name, doc in docs.items():
        files[name] = path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(doc, indent=2))
    done = subprocess.run(
        [node, str(SCRIPT), *map(str, files.values())],
        cwd=NODE_DIR,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = json.loads(done.stdout)
    return {name: out[str(path)] for name, path in files.items()}


def every_document() -> dict[str, dict[str, Any]]:
    docs = {
        f"demo-{m.NAME}": asyncapi_document(m.TOPOLOGY, publishes=m.publishes(), title=m.NAME)
        for m in (cache_invalidation, header_filtering, topic_logs, work_queue)
    }
    docs["example-shop"] = asyncapi_document(shop_topology.topology, publishes=shop_topology.publishes)
    consumes, sends = resize_worker.app.operations("resize")
    docs["example-resize"] = asyncapi_document(
        resize_worker.topology, publishes=(*resize_worker.publishes, *sends), consumes=consumes, vhost="jobs"
    )
    return docs


def errors(verdict: dict[str, Any]) -> list[str]:
    return [f"{d['path']}: {d['message']}" for d in verdict["diagnostics"] if d["severity"] == "error"]


@pytest.fixture(scope="module")
def verdicts(node: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return parse(node, tmp_path_factory.mktemp("asyncapi"), every_document())


@pytest.mark.parametrize("name", sorted(every_document()))
def test_the_parser_accepts_every_demo_and_example(verdicts: dict[str, Any], name: str) -> None:
    verdict = verdicts[name]
    assert errors(verdict) == [] and verdict["parsed"], json.dumps(verdict, indent=2)
    assert verdict["counts"]["warning"] == 0, json.dumps(verdict, indent=2)


def test_the_parser_accepts_the_command_output_and_user_schemas(node: str, tmp_path: Path) -> None:
    """The command's JSON, and a user schema folder whose schema refers to its own $defs and to a
    sibling file's."""
    from click.testing import CliRunner

    from routing.cli import main

    folder = tmp_path / "schemas"
    folder.mkdir()
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$defs": {"sku": {"type": "string", "minLength": 1}},
        "type": "object",
        "required": ["sku"],
        "properties": {"sku": {"$ref": "#/$defs/sku"}, "region": {"$ref": "common.json#/$defs/region"}},
    }
    (folder / "order.created.schema.json").write_text(json.dumps(schema))
    common = {"$defs": {"region": {"enum": ["eu", "us"]}}}
    (folder / "common.json").write_text(json.dumps(common))
    SchemaRegistry.from_directory(folder)  # the registry takes it
    result = CliRunner().invoke(
        main, ["asyncapi", "examples.shop_topology:topology", "--schemas", str(folder)]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert {"order.created.schema", "common"} <= set(doc["components"]["schemas"])
    verdict = parse(node, tmp_path, {"cli-shop": doc})["cli-shop"]
    assert errors(verdict) == [] and verdict["parsed"], json.dumps(verdict, indent=2)


def test_the_parser_catches_broken_documents(node: str, tmp_path: Path) -> None:
    good = every_document()["example-shop"]
    bad_type = copy.deepcopy(good)
    bad_type["channels"]["exchange.shop.events"]["bindings"]["amqp"]["exchange"]["type"] = "bogus"
    both_sides = copy.deepcopy(good)  # a channel cannot be an exchange and a queue at once
    both_sides["channels"]["queue.billing"]["bindings"]["amqp"]["exchange"] = {"name": "x"}
    lost_message = copy.deepcopy(good)  # an operation's message must be one of its channel's
    lost_message["channels"]["exchange.shop.events"]["messages"].pop("order.paid")
    dangling = copy.deepcopy(good)
    dangling["components"]["schemas"].pop("envelope.schema")
    docs = {
        "bad-type": bad_type,
        "both-sides": both_sides,
        "lost-message": lost_message,
        "dangling": dangling,
    }
    verdicts = parse(node, tmp_path, docs)
    for name, verdict in verdicts.items():
        assert errors(verdict), f"{name}: the parser found nothing wrong"
        assert not verdict["parsed"], name
    assert any("exchange/type" in d["path"] for d in verdicts["bad-type"]["diagnostics"])
