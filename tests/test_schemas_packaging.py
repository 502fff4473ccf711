"""The bundled schemas ship in the package: the wheel holds them and an installed copy finds
them without the source tree."""

from __future__ import annotations

import re
import subprocess
import sys
import sysconfig
import tomllib
import venv
from pathlib import Path

import pytest

from routing.schemas import SchemaRegistry

ROOT = Path(__file__).resolve().parent.parent


def test_every_subpackage_is_listed_in_pyproject() -> None:
    # The list is kept by hand (see pyproject.toml): a missing entry would leave modules out of
    # the wheel while the editable install still works, so nothing else would notice.
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    on_disk = {
        ".".join(path.parent.relative_to(ROOT).parts)
        for path in (ROOT / "routing").rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert on_disk - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert listed - on_disk == set(config["package-dir"])  # mapped from top-level folders
    assert config["package-dir"]["routing.schemas_data"] == "schemas"


def test_every_schema_file_is_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-data"]["routing.schemas_data"] == ["*.json"]
    files = [p.name for p in (ROOT / "schemas").iterdir() if p.is_file()]
    assert [name for name in files if not name.endswith(".json")] == ["__init__.py"]


def test_the_default_install_is_the_fast_one() -> None:
    # `pip install routing` must give the figures the README quotes: jsonschema-rs is a
    # dependency, not an extra; `routing[fast]` still installs (an empty extra).
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[<>=\[ ;]", d, maxsplit=1)[0] for d in project["dependencies"]}
    assert {"jsonschema", "jsonschema-rs"} <= names
    assert project["optional-dependencies"]["fast"] == []
    registry = SchemaRegistry.bundled()
    assert registry.fast and registry.fast_types == registry.types


@pytest.mark.slow
def test_an_installed_wheel_loads_the_bundled_schemas(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("routing-*.whl")
    env_dir = tmp_path / "env"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
    )
    # The dependencies come from this environment; its editable `routing` does not, because
    # .pth files are only run in site directories, and this one is added as a plain path.
    (site / "_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    check = (
        "import routing.schemas as s; r = s.SchemaRegistry.bundled(); "
        "print(s.bundled_directory()); print(','.join(r.types)); print(s.__file__)"
    )
    out = subprocess.run([python, "-c", check], cwd=tmp_path, check=True, capture_output=True, text=True)
    directory, types, module = out.stdout.splitlines()
    assert Path(directory) == site / "routing" / "schemas_data"
    assert types == "cache.invalidate,config.changed,log.record,task.resize_image"
    assert Path(module).is_relative_to(site)
