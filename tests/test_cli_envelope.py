"""`routing validate` and `routing build`, through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from routing.cli import main

LOG = {"level": "info", "service": "billing", "message": "paid", "time": "2024-05-01T12:00:00Z"}


def envelope(**changes: Any) -> dict[str, Any]:
    document = {
        "specversion": "1.0",
        "id": "e-1",
        "source": "urn:svc:billing",
        "type": "log.record",
        "data": LOG,
    }
    return {**document, **changes}


def run(*args: str, stdin: str | bytes | None = None) -> Any:
    return CliRunner().invoke(main, list(args), input=stdin)


def test_validate_a_valid_file(tmp_path: Path) -> None:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(envelope(), indent=2))
    result = run("validate", str(path))
    assert result.exit_code == 0, result.output
    assert result.output == f"{path}: valid\n"


def test_validate_prints_every_problem_and_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(envelope(id="", time="noon", data={**LOG, "level": 3})))
    result = run("validate", str(path))
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f'{path}: data.level: must be one of "debug", "info", "warning", "error", "critical"',
        f"{path}: id: must not be empty",
        f'{path}: time: not a valid date-time: "noon"',
    ]
    assert "1 of 1 invalid" in result.stderr


def test_validate_json_lines_reports_line_numbers(tmp_path: Path) -> None:
    lines = [
        json.dumps(envelope()),
        "",
        json.dumps(envelope(type="cache.invalidate", data={"cache": "c", "keys": "k", "reason": "r"})),
        '{"specversion": "1.0", "id": ',
        json.dumps(envelope(id="e-2")),
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = run("validate", str(path))
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{path}:3: data.keys: expected array, got string",
        f"{path}:4: not JSON: truncated at character 29 (Expecting value)",
    ]
    assert "2 of 4 invalid" in result.stderr


def test_validate_all_valid_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(envelope(id=f"e-{n}")) for n in range(3)))
    result = run("validate", str(path))
    assert result.exit_code == 0
    assert result.output == f"{path}: 3 valid\n"


def test_validate_reads_stdin() -> None:
    assert run("validate", "-", stdin=json.dumps(envelope())).output == "<stdin>: valid\n"
    bad = run("validate", "-", stdin=b"\xff\xfe")
    assert bad.exit_code == 1
    assert bad.stdout == "<stdin>: not UTF-8: byte 0xff at offset 0\n"


def test_validate_unknown_types_needs_allow_unknown() -> None:
    document = json.dumps(envelope(type="billing.invoice_paid", data={"x": 1}))
    refused = run("validate", "-", stdin=document)
    assert refused.exit_code == 1
    assert "type: unknown event type 'billing.invoice_paid'" in refused.stdout
    assert run("validate", "--allow-unknown", "-", stdin=document).exit_code == 0


def test_validate_with_a_user_schema_folder(tmp_path: Path) -> None:
    (tmp_path / "billing.invoice_paid.schema.json").write_text(
        json.dumps({"type": "object", "required": ["invoice"]})
    )
    good = json.dumps(envelope(type="billing.invoice_paid", data={"invoice": "i-1"}))
    bad = json.dumps(envelope(type="billing.invoice_paid", data={}))
    assert run("validate", "--schemas", str(tmp_path), "-", stdin=good).exit_code == 0
    result = run("validate", "--schemas", str(tmp_path), "-", stdin=bad)
    assert result.exit_code == 1
    assert result.stdout == "<stdin>: data.invoice: required\n"


def test_validate_plain_bodies_with_a_type() -> None:
    seed = '{"id": 1, "action": "resize_image"}'
    assert run("validate", "--type", "task.resize_image", "-", stdin=seed).exit_code == 0
    result = run("validate", "--type", "task.resize_image", "-", stdin='{"id": 1}')
    assert result.exit_code == 1
    assert "<stdin>: data: needs one of input+width+height, id+action" in result.stdout
    assert "has no event type" in run("validate", "-", stdin=seed).stdout


def test_validate_size_limit() -> None:
    result = run("validate", "--max-bytes", "50", "-", stdin=json.dumps(envelope()))
    assert result.exit_code == 1
    assert "over the 50-byte limit" in result.stdout


def test_a_bad_schema_folder_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "broken.schema.json").write_text("{")
    result = run("validate", "--schemas", str(tmp_path), "-", stdin="{}")
    assert result.exit_code == 1
    assert (
        result.output.startswith("Error: ") and "broken.schema.json: cannot read it as JSON" in result.output
    )
    assert "Traceback" not in result.output


def test_validate_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    result = run("validate", str(tmp_path / "nope.json"))
    assert result.exit_code == 2
    assert "No such file" in result.output


def test_validate_help_has_an_example() -> None:
    result = run("validate", "--help")
    assert result.exit_code == 0
    assert "routing validate event.json" in result.output
    assert "--schemas" in result.output and "--allow-unknown" in result.output


def test_build_prints_a_valid_envelope_that_validate_accepts() -> None:
    result = run("build", "--type", "log.record", "--source", "urn:svc:billing", "--data", json.dumps(LOG))
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert (document["type"], document["source"], document["data"]) == ("log.record", "urn:svc:billing", LOG)
    assert document["specversion"] == "1.0" and document["id"] and document["time"]
    assert run("validate", "-", stdin=result.stdout).exit_code == 0


def test_build_reads_data_from_stdin() -> None:
    result = run("build", "--type", "log.record", "--subject", "invoice/7", stdin=json.dumps(LOG))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["subject"] == "invoice/7"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--type", "log.record", "--data", "{level: info}"], "Error: data: not JSON"),
        (["--type", "log.record", "--data", '{"level": "loud"}'], "Error: data.level: must be one of"),
        (["--type", "made.up", "--data", "{}"], "Error: type: unknown event type 'made.up'"),
        (["--type", "", "--data", "{}"], "Error: type: must be a non-empty string"),
    ],
)
def test_build_refuses_invalid_envelopes_in_one_line(args: list[str], message: str) -> None:
    result = run("build", *args)
    assert result.exit_code == 1
    assert result.output.startswith(message)
    assert len(result.output.strip().splitlines()) == 1


def test_build_with_allow_unknown() -> None:
    result = run("build", "--type", "made.up", "--allow-unknown", "--data", '{"x": 1}')
    assert result.exit_code == 0
    assert json.loads(result.stdout)["data"] == {"x": 1}
