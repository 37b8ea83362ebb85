"""Layers that run one way (issue 13): walks every import in monitor/ (ast, every import
statement, inside functions too) and fails on an arrow from a lower module to a command's
package, or on a cycle. `config.py` imported the verdict's Selector, `live.py` the verdict's
history: the daemon depended on a command."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "monitor"
# The commands: the composition root and the packages of commands other than the daemon's own.
COMMANDS = (
    "monitor.cli",
    "monitor.__main__",
    "monitor.verdict",
    "monitor.preflight",
    "monitor.demo",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imports(path: Path, known: set[str]) -> set[str]:
    """The monitor modules this file imports (a `from package import name` of a submodule
    counts as importing the submodule)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        found |= {name for name in names if name in known}
    return found


def is_command(name: str) -> bool:
    return any(name == c or name.startswith(c + ".") for c in COMMANDS)


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports(path, known) - {name} for name, path in found.items()}


def test_no_lower_module_imports_a_command() -> None:
    arrows = [
        f"{name} -> {target}"
        for name, targets in sorted(graph().items())
        if not is_command(name)
        for target in sorted(targets)
        if is_command(target)
    ]
    assert arrows == []


def test_no_import_cycle() -> None:
    edges = graph()
    # A package's __init__ hands names on: its arrows to its own modules are not a layer.
    edges = {
        name: {t for t in targets if not t.startswith(name + ".")}
        for name, targets in edges.items()
    }
    cycles: list[list[str]] = []
    state: dict[str, str] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for target in sorted(edges.get(node, ())):
            if state.get(target) == "open":
                cycles.append([*trail[trail.index(target) :], target])
            elif target not in state:
                visit(target, [*trail, target])
        state[node] = "done"

    for name in sorted(edges):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_the_walk_sees_an_arrow_when_there_is_one() -> None:
    """The walk can fail: the composition root imports the verdict's command module."""
    assert "monitor.verdict.cli" in graph()["monitor.cli"]
    assert is_command("monitor.verdict.cli")
    assert not is_command("monitor.promql.query")


def test_the_dashboard_generator_reads_only_the_daemons_names() -> None:
    """dashboards/ (the package's monitor.dashboards) builds from the project's names: criteria,
    states, phases, the shipped rules. It sits above the daemon's modules and beside the
    commands: it may import neither a command nor, from monitor/, anything that imports it."""
    known = set(modules())
    arrows = {
        f"{path.name} -> {target}"
        for path in (ROOT / "dashboards").glob("*.py")
        for target in imports(path, known)
    }
    assert arrows == {
        "criteria.py -> monitor.criteria",
        "names.py -> monitor.assets",
        "overview.py -> monitor.migration",
        "overview.py -> monitor.status.page",
    }
    assert not any(is_command(arrow.split(" -> ")[1]) for arrow in arrows)
    assert not any("monitor.dashboards" in targets for targets in graph().values())
