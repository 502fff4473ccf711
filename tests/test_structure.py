"""The package's shape, read from its source with `ast` (issue 14, "Done when"): no module of routing/ over
400 lines, no import cycle (imports under `if TYPE_CHECKING:` and inside functions count), pika imported
only under routing/transport/rabbitmq/, every public module with an `__all__` naming what it defines, and
imports flowing down the layers the README's Layout section draws.

Each rule is a function over a source tree, so it runs on routing/ (and demos/, installed as
routing.demos) and, in the `*_can_fail` tests, on a small package written to a temporary directory that
breaks it. Nothing here imports the package or needs a broker.
"""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
# Installed as routing.demos (pyproject's package-dir); its imports take part in the import graph.
TREES = {"routing": ROOT / "routing", "routing.demos": ROOT / "demos"}
MAX_LINES = 400
PIKA_HOME = "routing.transport.rabbitmq"


@dataclass(frozen=True, slots=True)
class Module:
    name: str  # dotted: routing.transport.memory; a package is its __init__.py
    where: str  # the path shown in messages: routing/transport/memory.py
    is_package: bool
    tree: ast.Module
    lines: int


def modules(trees: dict[str, Path]) -> dict[str, Module]:
    """Every module under each root, by dotted name."""
    found: dict[str, Module] = {}
    for prefix, root in trees.items():
        for path in sorted(root.rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
            name = ".".join([prefix, *parts])
            text = path.read_text(encoding="utf-8")
            where = path.relative_to(root.parent).as_posix()
            found[name] = Module(name, where, is_package, ast.parse(text, str(path)), len(text.splitlines()))
    return found


def _imports(module: Module) -> Iterator[tuple[str, list[str], int]]:
    """(absolute module name, names taken from it, line) of every import in the module: at the top, under
    `if TYPE_CHECKING:`, inside functions. `import a.b` takes no names."""
    package = module.name if module.is_package else module.name.rpartition(".")[0]
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            yield source, [alias.name for alias in node.names], node.lineno


def import_graph(found: dict[str, Module]) -> dict[str, dict[str, int]]:
    """module -> {imported module of the same trees: line of the first import}.

    Only the module named is an edge, not its parent packages: `from routing.errors import X` runs
    routing/__init__.py too, but that is the package's choice, and counting it would put every module in
    one cycle with the package."""
    graph: dict[str, dict[str, int]] = {}
    for name, module in found.items():
        edges: dict[str, int] = {}
        for source, names, line in _imports(module):
            # `from routing.transport import memory` imports the module routing.transport.memory.
            targets = [f"{source}.{n}" if f"{source}.{n}" in found else source for n in names] or [source]
            for target in targets:
                if target in found and target != name:
                    edges.setdefault(target, line)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[tuple[list[str], list[str]]]:
    """(one short cycle, first module repeated at the end; every module of its strongly connected component)
    per component of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def connect(node: str) -> None:  # Tarjan; the graph has a few dozen nodes, recursion is fine
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                connect(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            connect(node)

    found = []
    for component in components:
        start = min(component)
        # Shortest way back to start inside the component (breadth first), so the cycle shown is short.
        previous: dict[str, str] = {}
        frontier = [start]
        while frontier and start not in previous:
            following = []
            for node in frontier:
                for succ in sorted(graph[node]):
                    if succ in component and succ not in previous:
                        previous[succ] = node
                        following.append(succ)
            frontier = following
        path = [start]
        node = previous[start]
        while node != start:
            path.append(node)
            node = previous[node]
        path.append(start)
        found.append(([start, *reversed(path[1:-1]), start], sorted(component)))
    return sorted(found)


def describe_cycle(
    cycle: tuple[list[str], list[str]], graph: dict[str, dict[str, int]], found: dict[str, Module]
) -> str:
    loop, component = cycle
    hops = [f"{a} -> {b} ({found[a].where}:{graph[a][b]})" for a, b in itertools.pairwise(loop)]
    text = "  " + "\n    ".join(hops)
    others = [m for m in component if m not in loop]
    if others:
        text += f"\n    (the same knot also holds {', '.join(others)})"
    return text


def oversized(found: dict[str, Module], limit: int = MAX_LINES) -> list[tuple[str, int]]:
    return sorted(
        ((m.where, m.lines) for m in found.values() if m.lines > limit), key=lambda x: (-x[1], x[0])
    )


def pika_imports(found: dict[str, Module], home: str = PIKA_HOME) -> list[str]:
    """file:line of every import of pika outside `home` and its submodules."""
    offenders = []
    for name, module in sorted(found.items()):
        if name == home or name.startswith(home + "."):
            continue
        for source, _, line in _imports(module):
            if source == "pika" or source.startswith("pika."):
                offenders.append(f"{module.where}:{line}: imports {source}")
    return offenders


def _is_private(name: str) -> bool:
    """A leading underscore on the module or on any package above it (routing._x, routing._pkg.y)."""
    return any(part.startswith("_") for part in name.split(".")[1:])


def _declared_all(module: Module) -> tuple[list[str] | None, str | None]:
    """(the names in `__all__`, or None when absent; a problem when it is not one literal list of strings)."""
    value: list[str] | None = None
    for node in module.tree.body:
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign | ast.AugAssign)
            else []
        )
        if not any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            continue
        if isinstance(node, ast.AugAssign) or node.value is None:
            return value, f"{module.where}:{node.lineno}: __all__ must be one literal list, not built up"
        try:
            literal = ast.literal_eval(node.value)
        except ValueError:
            return value, f"{module.where}:{node.lineno}: __all__ is not a literal list of strings"
        if not isinstance(literal, list | tuple) or not all(isinstance(n, str) for n in literal):
            return value, f"{module.where}:{node.lineno}: __all__ is not a literal list of strings"
        if value is not None:
            return value, f"{module.where}:{node.lineno}: __all__ is assigned twice"
        value = list(literal)
    return value, None


def _top_level_names(module: Module, found: dict[str, Module]) -> set[str]:
    """Names the module binds at import time (in if/try/with blocks too), and its package's submodules."""
    names: set[str] = set()

    def bind(target: ast.expr) -> None:
        if isinstance(target, ast.Name):
            names.add(target.id)
        elif isinstance(target, ast.Tuple | ast.List):
            for element in target.elts:
                bind(element)
        elif isinstance(target, ast.Starred):
            bind(target.value)

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Import):
                names.update(a.asname or a.name.partition(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                names.update(a.asname or a.name for a in node.names)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    bind(target)
            elif isinstance(node, ast.AnnAssign | ast.AugAssign):
                bind(node.target)
            elif isinstance(node, ast.If | ast.For | ast.While | ast.With | ast.Try | ast.TryStar):
                for field in ("body", "orelse", "finalbody"):
                    visit(getattr(node, field, []))
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)

    visit(module.tree.body)
    if module.is_package:
        prefix = module.name + "."
        names.update(n[len(prefix) :].partition(".")[0] for n in found if n.startswith(prefix))
    return names


def surface_problems(found: dict[str, Module], prefix: str = "routing") -> tuple[list[str], list[str]]:
    """(public modules in the folder `prefix` without `__all__`, problems with the `__all__`s that exist)."""
    missing, problems = [], []
    for name, module in sorted(found.items(), key=lambda item: item[1].where):
        if not module.where.startswith(prefix + "/"):
            continue
        declared, problem = _declared_all(module)
        if problem:
            problems.append(problem)
        if declared is None:
            if not _is_private(name) and not problem:
                missing.append(module.where)
            continue
        defined = _top_level_names(module, found)
        problems += [
            f"{module.where}: __all__ names {n!r}, which it does not define"
            for n in declared
            if n not in defined
        ]
        problems += [
            f"{module.where}: __all__ names {n!r} twice"
            for n in sorted(set(declared))
            if declared.count(n) > 1
        ]
        problems += [  # exact: a public function or class it defines is in it, or gets an underscore
            f"{module.where}:{node.lineno}: {node.name!r} is public but not in __all__"
            for node in module.tree.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            and not node.name.startswith("_")
            and node.name not in declared
        ]
    return missing, problems


def readme_layers(readme: str) -> list[list[str]]:
    """The import direction the README's Layout section draws: its last ```text block, a line per layer
    from the top, the modules of a layer separated by commas; `transport/memory` is routing.transport.memory,
    `(...)` is a remark."""
    section = readme.partition("\n## Layout\n")[2].partition("\n## ")[0]
    blocks = re.findall(r"^```text\n(.*?)^```$", section, flags=re.M | re.S)
    assert blocks, "README.md's Layout section has no ```text block drawing the import direction"
    layers = []
    for line in blocks[-1].splitlines():
        names = [re.sub(r"\(.*?\)", "", n).strip() for n in line.split(",")]
        layers.append(["routing." + n.replace("/", ".") for n in names if n])
    return [layer for layer in layers if layer]


def layer_problems(found: dict[str, Module], layers: list[list[str]]) -> list[str]:
    """Imports that go up the layers, modules the layers name that do not exist, and public modules they
    do not place. A module is placed by the longest name in the layers it is, or is inside of; the package
    itself (the public facade) and private modules outside every named package are not placed."""
    named = {name: depth for depth, layer in enumerate(layers) for name in layer}
    problems = [f"the Layout names {n}, which does not exist" for n in named if n not in found]

    def depth(module: str) -> int | None:
        parts = module.split(".")
        for end in range(len(parts), 1, -1):
            if ".".join(parts[:end]) in named:
                return named[".".join(parts[:end])]
        return None

    for name, module in sorted(found.items(), key=lambda item: item[1].where):
        if depth(name) is None and name != "routing" and not _is_private(name):
            problems.append(f"{module.where}: {name} is in no layer of the Layout's import direction")
    graph = import_graph(found)
    for name, edges in sorted(graph.items()):
        here = depth(name)
        for target, line in sorted(edges.items()):
            there = depth(target)
            if here is not None and there is not None and there < here:
                problems.append(
                    f"{found[name].where}:{line}: {name} imports {target}, a layer above it "
                    f"({', '.join(layers[there])} is above {', '.join(layers[here])})"
                )
    return problems


# --- the rules, on routing/ ---------------------------------------------------------------------------


def _fail(message: str) -> None:
    pytest.fail(message, pytrace=False)  # the message says it all; the traceback would only repeat it


@pytest.fixture(scope="module")
def package() -> dict[str, Module]:
    return modules(TREES)


def test_no_module_is_over_400_lines(package: dict[str, Module]) -> None:
    routing_only = {n: m for n, m in package.items() if m.where.startswith("routing/")}
    offenders = oversized(routing_only)
    if offenders:
        _fail(
            f"{len(offenders)} module(s) of routing/ over {MAX_LINES} lines; split them by concern:\n"
            + "\n".join(f"  {where}: {lines} lines" for where, lines in offenders)
        )


def test_no_import_cycle(package: dict[str, Module]) -> None:
    graph = import_graph(package)
    found = cycles(graph)
    if found:
        _fail(
            f"{len(found)} import cycle(s) among routing's modules (TYPE_CHECKING and function-local imports "
            "count); each shown as one loop, with the line of each import:\n"
            + "\n".join(describe_cycle(c, graph, package) for c in found)
        )


def test_pika_is_imported_only_by_the_rabbitmq_transport(package: dict[str, Module]) -> None:
    offenders = pika_imports(package)
    if offenders:
        _fail(
            f"pika imported outside {PIKA_HOME.replace('.', '/')}/:\n"
            + "\n".join(f"  {o}" for o in offenders)
        )


def test_every_public_module_declares_all_and_all_names_exist(package: dict[str, Module]) -> None:
    missing, problems = surface_problems(package)
    message = []
    if missing:
        message.append(
            f"{len(missing)} public module(s) without __all__ (define one, or make the module private with a "
            "leading underscore):\n" + "\n".join(f"  {w}" for w in missing)
        )
    if problems:
        message.append(f"{len(problems)} problem(s) with __all__:\n" + "\n".join(f"  {p}" for p in problems))
    if message:
        _fail("\n".join(message))


def test_imports_flow_the_way_the_readme_draws(package: dict[str, Module]) -> None:
    layers = readme_layers((ROOT / "README.md").read_text(encoding="utf-8"))
    problems = layer_problems(package, layers)
    if problems:
        _fail(
            f"{len(problems)} way(s) the README's Layout (its import direction) and the code disagree:\n"
            + "\n".join(f"  {p}" for p in problems)
        )


# --- each rule can fail -------------------------------------------------------------------------------


def _write(root: Path, files: dict[str, str]) -> dict[str, Module]:
    for relative, text in files.items():
        path = root / "routing" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return modules({"routing": root / "routing"})


def test_size_rule_can_fail(tmp_path: Path) -> None:
    found = _write(tmp_path, {"__init__.py": "", "big.py": "x = 1\n" * 401, "fine.py": "x = 1\n" * 400})
    assert oversized(found) == [("routing/big.py", 401)]


def test_cycle_rule_can_fail(tmp_path: Path) -> None:
    found = _write(
        tmp_path,
        {
            "__init__.py": "from routing.a import A\n",
            "a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from routing.b import B\nA = 1\n",
            "b.py": "def f():\n    from .sub import c\n",
            "sub/__init__.py": "",
            "sub/c.py": "from .. import a\n",
            "d.py": "import routing.a\nimport routing.errors_elsewhere\n",  # d -> a only: no cycle
        },
    )
    graph = import_graph(found)
    assert cycles(graph) == [
        (
            ["routing.a", "routing.b", "routing.sub.c", "routing.a"],
            ["routing.a", "routing.b", "routing.sub.c"],
        )
    ]
    assert describe_cycle(cycles(graph)[0], graph, found) == (
        "  routing.a -> routing.b (routing/a.py:3)\n"
        "    routing.b -> routing.sub.c (routing/b.py:2)\n"
        "    routing.sub.c -> routing.a (routing/sub/c.py:1)"
    )


def test_pika_rule_can_fail(tmp_path: Path) -> None:
    found = _write(
        tmp_path,
        {
            "__init__.py": "",
            "transport/__init__.py": "def f():\n    import pika.exceptions\n",
            "transport/rabbitmq/__init__.py": "import pika\n",
            "transport/rabbitmq/_x.py": "from pika.spec import BasicProperties\n",
            "other.py": "from pika import BlockingConnection\n",
        },
    )
    assert pika_imports(found) == [
        "routing/other.py:1: imports pika",
        "routing/transport/__init__.py:2: imports pika.exceptions",
    ]


def test_surface_rule_can_fail(tmp_path: Path) -> None:
    found = _write(
        tmp_path,
        {
            "__init__.py": "from routing.public import thing\n__all__ = ['thing', 'sub']\n",
            "public.py": "thing = 1\n",  # no __all__
            "_private.py": "x = 1\n",
            "_pkg/__init__.py": "",
            "_pkg/inner.py": "y = 1\n",  # private through its package
            "sub/__init__.py": "",  # a public package without __all__
            "named.py": "try:\n    import json as j\nexcept ImportError:\n    j = None\n__all__ = ['j', 'gone', 'j']\n",
            "built.py": "__all__ = ['a']\n__all__ += ['b']\na = b = 1\n",
            "leaky.py": "__all__ = ['kept']\ndef kept(): ...\ndef leaked(): ...\ndef _inner(): ...\n",
        },
    )
    missing, problems = surface_problems(found)
    assert missing == ["routing/public.py", "routing/sub/__init__.py"]
    assert problems == [
        "routing/built.py:2: __all__ must be one literal list, not built up",
        "routing/leaky.py:3: 'leaked' is public but not in __all__",
        "routing/named.py: __all__ names 'gone', which it does not define",
        "routing/named.py: __all__ names 'j' twice",
    ]


def test_layer_rule_can_fail(tmp_path: Path) -> None:
    readme = (
        "# x\n\n## Layout\n\n```text\nrouting/  the package\n```\n\nImports:\n\n"
        "```text\ncli\ntransport (open_transport), transport/memory\ntopology, gone\nerrors\n```\n\n## Next\n"
    )
    layers = readme_layers(readme)
    assert layers == [
        ["routing.cli"],
        ["routing.transport", "routing.transport.memory"],
        ["routing.topology", "routing.gone"],
        ["routing.errors"],
    ]
    found = _write(
        tmp_path,
        {
            "__init__.py": "import routing.cli\n",  # the facade is above every layer
            "cli/__init__.py": "from routing.cli import _shared\n",
            "cli/_shared.py": "import routing.transport\n",  # placed by its package: cli
            "transport/__init__.py": "from routing.transport.memory import M\n",  # same layer
            "transport/memory.py": "import routing.errors\nfrom routing import _util\n",
            "_util.py": "import routing.cli\n",  # private, outside every named package: not placed
            "topology.py": "def f():\n    from routing.transport import memory\n",  # up a layer
            "errors.py": "",
            "extra.py": "",  # public and in no layer
        },
    )
    assert layer_problems(found, layers) == [
        "the Layout names routing.gone, which does not exist",
        "routing/extra.py: routing.extra is in no layer of the Layout's import direction",
        "routing/topology.py:2: routing.topology imports routing.transport.memory, a layer above it "
        "(routing.transport, routing.transport.memory is above routing.topology, routing.gone)",
    ]
