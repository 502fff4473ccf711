"""The public API is what `routing.__all__` says, exactly (httpx's tests/test_exported_members.py): every
public name routing/__init__.py binds is exported, and nothing else. Every public module's `__all__` is
sorted, without repeats, and names only what the module has.

"Sorted" is the order ruff's RUF022 keeps (`ruff check` fixes it): constants, then classes, then the rest,
each in natural order."""

from __future__ import annotations

import importlib
import pkgutil
import re
import tomllib
import types
from importlib.metadata import version
from pathlib import Path

from click.testing import CliRunner

import routing
from routing.cli import main

ROOT = Path(__file__).parents[1]


def ruff_order(name: str) -> tuple[int, list[int | str]]:
    """RUF022's isort-style key: SCREAMING_CASE (two characters or more), CamelCase, anything else."""
    cased = [c for c in name if c.isalpha()]
    if len(name) > 1 and cased and all(c.isupper() for c in cased):
        kind = 0
    elif name[:1].isupper():
        kind = 1
    else:
        kind = 2
    # Natural order: a2 before a10. Digits and text never meet at one index, as split keeps them apart.
    return kind, [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def test_ruff_order_is_ruffs() -> None:
    # Checked against `ruff check --select RUF022 --fix` (ruff 0.17.6).
    names = ["b", "A", "T", "NO_RETRY", "X1", "a10", "a2", "_x", "__version__", "Zeta", "HTTPError", "HTTP"]
    assert sorted(names, key=ruff_order) == [
        *("HTTP", "NO_RETRY", "X1"),
        *("A", "HTTPError", "T", "Zeta"),
        *("__version__", "_x", "a2", "a10", "b"),
    ]


def _own_submodule(value: object) -> bool:
    """A module of the package itself, bound as an attribute when it is imported (routing.errors)."""
    return isinstance(value, types.ModuleType) and value.__name__.startswith("routing.")


def test_all_is_exactly_the_public_names_sorted() -> None:
    # Not identifiers: what pytest's assertion rewriting binds (`@py_builtins`) in the modules
    # of a distribution with a pytest plugin, as routing is (routing.pytest_plugin).
    public = [
        name
        for name, value in vars(routing).items()
        if (not name.startswith("_") or name == "__version__")
        and name.isidentifier()
        and not _own_submodule(value)
    ]
    assert routing.__all__ == sorted(routing.__all__)  # plain order too, as this test always asked
    assert routing.__all__ == sorted(public, key=ruff_order), (
        f"bound but not exported: {sorted(set(public) - set(routing.__all__))}; "
        f"exported but not bound: {sorted(set(routing.__all__) - set(public))}; "
        f"in order: {routing.__all__ == sorted(routing.__all__, key=ruff_order)}"
    )


def _public_modules() -> list[str]:
    """Every module of the package without a leading underscore in its dotted name (`routing.__main__`
    runs the CLI; it is private)."""
    names = ["routing", "routing.demos"]  # routing.demos lives in demos/, beside the package's folder
    for package in (routing, importlib.import_module("routing.demos")):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not any(part.startswith("_") for part in info.name.split(".")):
                names.append(info.name)
    return sorted(set(names))


def test_every_public_all_is_sorted_unique_and_exists() -> None:
    found = _public_modules()
    assert {"routing", "routing.topology", "routing.transport", "routing.worker.app", "routing.demos"} <= set(
        found
    )
    problems = []
    for name in found:
        module = importlib.import_module(name)
        declared = getattr(module, "__all__", None)
        if declared is None:
            continue  # tests/test_structure.py asks for one
        if not isinstance(declared, list):
            problems.append(f"{name}.__all__ is a {type(declared).__name__}, not a list")
            continue
        if declared != sorted(declared, key=ruff_order):
            problems.append(f"{name}.__all__ is not in order; should be {sorted(declared, key=ruff_order)}")
        if repeated := sorted({n for n in declared if declared.count(n) > 1}):
            problems.append(f"{name}.__all__ repeats {repeated}")
        if missing := [n for n in declared if not hasattr(module, n)]:
            problems.append(f"{name}.__all__ names what it does not have: {missing}")
    assert not problems, "\n".join(problems)


def test_version_is_pyprojects() -> None:
    """Written once, in pyproject.toml; routing.__version__ and `routing --version` read the metadata."""
    written = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    assert routing.__version__ == version("routing") == written
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output == f"routing, version {written}\n"


def test_version_is_written_once() -> None:
    written = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    holders = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "routing").rglob("*.py"))
        if f'"{written}"' in path.read_text(encoding="utf-8")
    ]
    assert not holders, f"the version {written!r} is written in {holders}; read routing.__version__ instead"
