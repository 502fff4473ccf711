"""Find a topology from what a user types: a definitions file, or `package.module:attribute`.

A module reference is imported as `python -m` and uvicorn would: the current working
directory goes first on `sys.path`, so `routing explain shop:topology ...` finds `./shop.py`.
The attribute is a `Topology` or a zero-argument function that returns one; a dotted
attribute (`module:obj.topology`) is followed. Importing runs the module's code.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import sys
from typing import Any, TypeVar

from routing.definitions import file_vhost, load_definitions, read_definitions
from routing.errors import DefinitionsError
from routing.topology import Topology

__all__ = ["load_instance", "load_topology", "load_value", "topology_vhost"]


_IDENTIFIERS = r"[^\W\d]\w*(?:\.[^\W\d]\w*)*"
_MODULE_REF = re.compile(rf"({_IDENTIFIERS}):({_IDENTIFIERS})")


def load_topology(ref: str, *, vhost: str | None = None) -> Topology:
    """The topology `ref` names: a definitions JSON file (read for `vhost`; by default the one
    vhost the file has, else `/`) or `module:attribute`."""
    match = _MODULE_REF.fullmatch(ref)
    if match and not os.path.exists(ref):
        return _instance(match.group(1), match.group(2), Topology, "Topology")
    if not os.path.exists(ref) and not ref.endswith(".json"):
        raise DefinitionsError(
            f"{ref}: no such file; a Python topology is written module:attribute, e.g. shop.topology:topology"
        )
    return load_definitions(ref, vhost=vhost)


def topology_vhost(ref: str, vhost: str | None = None) -> str:
    """The vhost `load_topology(ref, vhost=vhost)` reads: the one given, else the one vhost a
    definitions file has, else `/`."""
    if vhost is not None:
        return vhost
    if _MODULE_REF.fullmatch(ref) and not os.path.exists(ref):
        return "/"
    try:
        return file_vhost(read_definitions(ref)) or "/"
    except DefinitionsError:
        return "/"  # load_topology reports the problem


T = TypeVar("T")


def load_instance(ref: str, kind: type[T], name: str | None = None) -> T:
    """The `kind` instance `package.module:attribute` names, or that a zero-argument
    function there returns (a dotted attribute is followed)."""
    match = _MODULE_REF.fullmatch(ref)
    if not match:
        raise DefinitionsError(f"{ref}: expected module:attribute, e.g. shop.jobs:app")
    return _instance(match.group(1), match.group(2), kind, name or kind.__name__)


def load_value(ref: str, name: str = "value") -> Any:
    """Whatever `package.module:attribute` names, or what a zero-argument function there
    returns (its caller checks the type; `name` says what was wanted, for messages)."""
    match = _MODULE_REF.fullmatch(ref)
    if not match:
        raise DefinitionsError(f"{ref}: expected module:attribute, e.g. shop.publishers:publishers")
    value = _import(match.group(1), match.group(2))
    if callable(value) and not inspect.isclass(value):
        return _called(ref, match.group(2), value, name)
    return value


def _import(module_name: str, attribute: str) -> Any:
    ref = f"{module_name}:{attribute}"
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name + ".").startswith(exc.name + "."):
            raise DefinitionsError(
                f"{ref}: no module named {exc.name!r} (looked in {cwd} and on sys.path)"
            ) from None
        raise DefinitionsError(f"{ref}: importing {module_name!r} failed: {exc}") from exc
    except Exception as exc:
        raise DefinitionsError(f"{ref}: importing {module_name!r} failed: {_one_line(exc)}") from exc
    value: Any = module
    for part in attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise DefinitionsError(f"{ref}: {module_name!r} has no attribute {attribute!r}") from None
    return value


def _instance(module_name: str, attribute: str, kind: type[T], name: str) -> T:
    ref = f"{module_name}:{attribute}"
    value = _import(module_name, attribute)
    if isinstance(value, kind):
        return value
    if callable(value) and not inspect.isclass(value):
        value = _called(ref, attribute, value, name)
        if isinstance(value, kind):
            return value
        raise DefinitionsError(f"{ref}: {attribute}() returned type {type(value).__name__}, not a {name}")
    raise DefinitionsError(
        f"{ref}: is of type {type(value).__name__}, not a {name} or a function that returns one"
    )


def _called(ref: str, attribute: str, function: Any, name: str) -> Any:
    try:
        inspect.signature(function).bind()
    except TypeError:
        raise DefinitionsError(
            f"{ref}: {attribute}() needs arguments; point at a {name} or a zero-argument function"
        ) from None
    except ValueError:
        pass  # no signature to inspect (some builtins): just call it
    try:
        return function()
    except Exception as exc:
        raise DefinitionsError(f"{ref}: calling {attribute}() failed: {_one_line(exc)}") from exc


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
