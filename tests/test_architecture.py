"""The import graph keeps its layers: no circles, and no arrow from a lower app to a higher one.

The graph is read from the source with `ast` (nothing is imported), over the project's packages.
An edge is `module -> project module it imports`, at module level or inside a function;
imports under `if TYPE_CHECKING:` are left out (they never run). Importing `a.b.c` also runs
`a/__init__.py` and `a/b/__init__.py`, so those count as imported too.

Layers, lowest first: `control_tower` (tenancy, errors, shared vocabulary), `carriers`,
`tracking` (the domain), `exceptions`, the event consumers (`notifications`, `webhooks`, and
the two apps inside `carriers/` that read deliveries: `carriers.feeds` and `carriers.sla`),
and the two presentation apps on top, `portal` (the console, tracking page and reports) and
`driver_app` (the driver's phone app), which do not import each other. Only the project's
wiring modules may reach up.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (
    "control_tower",
    "carriers",
    "tracking",
    "exceptions",
    "notifications",
    "webhooks",
    "portal",
    "driver_app",
)

# Modules whose job is to plug the apps together (URL tables, the ASGI app, Celery, settings).
WIRING = {
    "control_tower.asgi",
    "control_tower.celery",
    "control_tower.settings",
    "control_tower.urls",
    "control_tower.api.urls",
}


def _modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            relative = path.relative_to(ROOT)
            if "migrations" in relative.parts:
                continue
            parts = list(relative.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


MODULES = _modules()


def _project_module(name: str) -> str | None:
    """The project module `name` refers to (a name inside a module counts as that module)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imported_names(node: ast.Import | ast.ImportFrom, module: str) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module.split(".")
        if MODULES[module].name != "__init__.py":
            package = package[:-1]
        package = package[: len(package) - node.level + 1]
        base = ".".join([*package, base] if base else package)
    return [f"{base}.{alias.name}" for alias in node.names]


def _with_parents(target: str, importer: str) -> set[str]:
    """`target` and the packages whose `__init__` importing it runs."""
    found = {target}
    parts = target.split(".")
    for size in range(1, len(parts)):
        parent = ".".join(parts[:size])
        if parent in MODULES and not importer.startswith(parent + "."):
            found.add(parent)
    return found


def _graph() -> tuple[dict[str, set[str]], dict[str, set[str]], dict[str, set[str]]]:
    """(module-level edges, every edge including imports inside functions, every edge as
    written: without the parent packages)."""
    top: dict[str, set[str]] = defaultdict(set)
    every: dict[str, set[str]] = defaultdict(set)
    written: dict[str, set[str]] = defaultdict(set)

    def visit(module: str, node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for orelse in child.orelse:
                    visit(module, orelse, in_function)
                continue
            nested = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import | ast.ImportFrom):
                for name in _imported_names(child, module):
                    target = _project_module(name)
                    if target is None or target == module:
                        continue
                    written[module].add(target)
                    for reached in _with_parents(target, module) - {module}:
                        every[module].add(reached)
                        if not nested:
                            top[module].add(reached)
            visit(module, child, nested)

    for module, path in MODULES.items():
        visit(module, ast.parse(path.read_text(), filename=str(path)), False)
    return top, every, written


TOP, EVERY, WRITTEN = _graph()


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(MODULES):
        if node not in index:
            connect(node)
    return found


# Apps nested in another app's package, each its own layer.
NESTED_APPS = ("carriers.feeds", "carriers.sla")


def _app(module: str) -> str:
    for nested in NESTED_APPS:
        if module == nested or module.startswith(nested + "."):
            return nested
    return module.split(".")[0]


def test_the_graph_sees_the_project():
    # A broken parser would make every other assertion here pass vacuously.
    assert len(MODULES) > 100
    assert "tracking.models" in TOP["tracking.services.stops"]
    assert "control_tower.tenancy.scope" in EVERY["tracking.simulation.history"]


def test_no_circle_among_module_level_imports():
    assert _cycles(TOP) == []


def test_no_circle_hidden_in_imports_inside_functions():
    # An import moved into a function to dodge a circle still makes one.
    assert _cycles(EVERY) == []


def test_only_the_wiring_imports_the_console():
    arrows = {
        (module, target)
        for module, targets in WRITTEN.items()
        if _app(module)
        in ("control_tower", "carriers", "tracking", "exceptions", "carriers.feeds", "carriers.sla")
        and module not in WIRING
        for target in targets
        if _app(target) == "portal"
    }
    assert arrows == set()


def test_the_tenancy_app_does_not_import_the_domain():
    arrows = {
        (module, target)
        for module, targets in WRITTEN.items()
        if _app(module) == "control_tower" and module not in WIRING
        for target in targets
        if _app(target) in ("tracking", "portal", "exceptions")
    }
    assert arrows == set()


def test_carriers_do_not_import_tracking():
    # Fleet and devices sit below the deliveries they carry out.
    arrows = {
        (module, target)
        for module, targets in WRITTEN.items()
        if _app(module) == "carriers"
        for target in targets
        if _app(target) in ("tracking", "portal", "exceptions")
    }
    assert arrows == set()


def test_the_domain_does_not_import_its_messengers():
    # Notifications, webhooks, carrier feeds and SLA roll-ups sit above the domain: nothing
    # below them calls them; the consumers hear events through the outbox.
    arrows = {
        (module, target)
        for module, targets in WRITTEN.items()
        if _app(module) in ("control_tower", "carriers", "tracking", "exceptions")
        and module not in WIRING
        for target in targets
        if _app(target) in ("notifications", "webhooks", "carriers.feeds", "carriers.sla")
    }
    assert arrows == set()


def test_messengers_do_not_import_feeds_or_reports():
    # Feeds and SLA reports may use the messengers (the weekly scorecard e-mail goes through
    # the e-mail channel), never the other way round.
    arrows = {
        (module, target)
        for module, targets in WRITTEN.items()
        if _app(module) in ("notifications", "webhooks")
        for target in targets
        if _app(target) in ("carriers.feeds", "carriers.sla", "portal")
    }
    assert arrows == set()


def test_notifications_and_webhooks_are_independent():
    arrows = {
        (module, target)
        for module, targets in WRITTEN.items()
        for target in targets
        if {_app(module), _app(target)} == {"notifications", "webhooks"}
    }
    assert arrows == set()


def test_nothing_below_imports_the_driver_app_and_the_two_faces_are_independent():
    # The driver app is a client of the platform like the console: services never call it,
    # and the console and the phone app share only what lies below them.
    arrows = {
        (module, target)
        for module, targets in WRITTEN.items()
        if _app(module) != "driver_app" and module not in WIRING
        for target in targets
        if _app(target) == "driver_app"
    }
    arrows |= {
        (module, target)
        for module, targets in WRITTEN.items()
        if _app(module) == "driver_app"
        for target in targets
        if _app(target) == "portal"
    }
    assert arrows == set()
