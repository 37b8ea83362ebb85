"""The folders are the layers, and the imports run one way (issue 18): walks every import in
monitor/ (ast, every import statement, inside functions too) and fails on an arrow up the
layers, on an arrow between two commands, or on a cycle."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "monitor"
# Bottom to top: each package may import its own modules and those of the floors below it.
FLOORS = (
    ("monitor.output", "monitor.assets"),  # the redactor, the log, shown values; shipped files
    ("monitor.promql", "monitor.lockplan"),  # Prometheus's client; the migration's SQL read
    ("monitor.config",),  # values, the schema, loading, durations, names
    ("monitor.db",),  # the pool, the read-only session, the queries
    ("monitor.observe",),  # the probe, the probe log, readings, the migration's view, metrics
    ("monitor.checks",),  # one file per check
    ("monitor.judge",),  # criteria, statistics, the baseline, the live view, verdict windows
    ("monitor.http",),  # /metrics, the guard, web config, the status page
    ("monitor.daemon",),  # service, replica, leadership, reload
    ("monitor.verdict", "monitor.preflight", "monitor.demo", "monitor.plan"),  # the commands
    ("monitor.cli",),  # the composition root
    ("monitor", "monitor.__main__"),  # the package, and `python -m monitor`
)
COMMANDS = FLOORS[-2]
MAX_ROOT_MODULES = 6
MAX_LINES = 450


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


def room(name: str) -> str:
    """The package (or root module) a module belongs to: its place in FLOORS."""
    return next(
        p
        for floor in FLOORS
        for p in floor
        if name == p or (p != "monitor" and name.startswith(p + "."))
    )


def floor(name: str) -> int:
    return next(i for i, rooms in enumerate(FLOORS) if room(name) in rooms)


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports(path, known) - {name} for name, path in found.items()}


def arrows_up_or_across(edges: dict[str, set[str]]) -> list[str]:
    """Imports of a higher floor, or of another room on the same floor."""
    return [
        f"{name} -> {target}"
        for name, targets in sorted(edges.items())
        for target in sorted(targets)
        if floor(target) > floor(name)
        or (floor(target) == floor(name) and room(target) != room(name))
    ]


def test_every_module_has_a_floor() -> None:
    homeless = []
    for name in modules():
        try:
            room(name)
        except StopIteration:
            homeless.append(name)
    assert homeless == []


def test_imports_run_down_the_floors_only() -> None:
    assert arrows_up_or_across(graph()) == []


def test_the_walk_sees_an_arrow_up_when_there_is_one() -> None:
    """The walk can fail: an arrow from the database layer to the judge, and one between two
    commands, are both reported."""
    edges = {
        "monitor.db.pool": {"monitor.judge.criteria", "monitor.config.schema"},
        "monitor.verdict.cli": {"monitor.preflight.cli"},
    }
    assert arrows_up_or_across(edges) == [
        "monitor.db.pool -> monitor.judge.criteria",
        "monitor.verdict.cli -> monitor.preflight.cli",
    ]
    assert "monitor.daemon.commands" in graph()["monitor.cli"]


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


def test_the_root_holds_few_modules_and_none_is_long() -> None:
    """At most six modules at monitor/'s root; no module over 450 lines."""
    root = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(root) <= MAX_ROOT_MODULES, root
    long = {
        str(path.relative_to(ROOT)): lines
        for path in PACKAGE.rglob("*.py")
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_no_test_module_imports_another() -> None:
    """Helpers shared by tests live in helper modules (clocks, databases, rollouts, worlds, ...),
    never in a test_*.py another test module imports."""
    tests = ROOT / "tests"
    own = {path.stem for path in tests.glob("*.py")} | {"conftest"}
    arrows = sorted(
        f"{path.name} -> {target}"
        for path in tests.glob("*.py")
        for target in imports(path, own)
        if target.startswith("test_") or target == "conftest"
    )
    assert arrows == []


def test_the_dashboard_generator_reads_only_the_daemons_names() -> None:
    """dashboards/ (the checkout's `python -m dashboards`, not in the wheel) builds from the
    project's names: criteria, states, phases, the shipped rules. It imports no command, and
    nothing in monitor/ imports it."""
    known = set(modules())
    arrows = {
        f"{path.name} -> {target}"
        for path in (ROOT / "dashboards").glob("*.py")
        for target in imports(path, known)
    }
    assert arrows == {
        "criteria.py -> monitor.judge.observation",
        "names.py -> monitor.assets",
        "overview.py -> monitor.observe.migration",
        "overview.py -> monitor.judge.rollout",
    }
    assert not any(room(arrow.split(" -> ")[1]) in COMMANDS for arrow in arrows)
    assert not any(t.startswith("dashboards") for targets in graph().values() for t in targets)


def loaded_by(code: str) -> set[str]:
    """The monitor and dashboards modules a fresh interpreter holds after running code."""
    listing = "import sys; print(*sorted(m for m in sys.modules if m.split('.')[0] in"
    listing += " ('monitor', 'dashboards', 'httpx')))"
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\n{listing}"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return set(done.stdout.split())


def test_run_loads_the_daemon_and_no_other_commands_code() -> None:
    """Issue 18: `run` imported the demo's, the pre-flight's and the verdict's command modules.
    Now the command line loads none of the commands' code, `run` the daemon's only, and httpx
    waits for the first probe."""
    parsing = loaded_by("import monitor.cli")
    assert not any(m.startswith("monitor.daemon") for m in parsing)
    running = loaded_by("import monitor.cli, monitor.daemon.commands, monitor.daemon.setup")
    others = (
        *("monitor.demo.command", "monitor.demo.stack", "monitor.preflight.command"),
        *("monitor.preflight.checks", "monitor.verdict.command", "dashboards"),
    )
    assert sorted(m for m in running if m.startswith(others)) == []
    assert not any(m.startswith("httpx") for m in running)
