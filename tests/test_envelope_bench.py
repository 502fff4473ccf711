"""The envelope benchmark still runs, and measures what it says (quick N: not a timing test)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from routing.schemas import SchemaRegistry

# `bench/` is a package of the checkout, not of the installed project: put the checkout first.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
envelope_bench = importlib.import_module("bench.envelope_bench")


def test_quick_run_reports_every_operation() -> None:
    rows = envelope_bench.run(quick=True, n=20)
    names = [row["operation"] for row in rows]
    assert names == list(envelope_bench.steps())
    assert names[0] == "json.dumps + json.loads" and "jsonschema.validate() per call" in names
    assert all(row["us_median"] > 0 and row["us_best"] <= row["us_median"] for row in rows)
    assert rows[0]["vs_json"] == 1.0
    table = envelope_bench.report(rows)
    assert all(name in table for name in names)


def test_the_sample_envelope_is_valid() -> None:
    SchemaRegistry.bundled().validate(envelope_bench.sample_envelope().to_dict())
