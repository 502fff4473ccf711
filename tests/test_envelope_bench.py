"""The envelope benchmark still runs, and measures what it says (quick N: not a timing test)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from routing.schemas import SchemaRegistry

# `bench/` is not on pytest's path (only `python -m bench...` puts it there): load it by file.
_spec = importlib.util.spec_from_file_location(
    "envelope_bench", Path(__file__).resolve().parent.parent / "bench" / "envelope_bench.py"
)
assert _spec is not None and _spec.loader is not None
envelope_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(envelope_bench)


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
