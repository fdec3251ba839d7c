"""The house's floors: a package imports only from its own floor or below, and no module imports
itself in a circle, imports inside functions included. And the light commands stay light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# bottom to top (shared/STYLE.md): models; what is compared; the step engine; memory budgets; the
# harness; the command line and the reports. Below them all, the package's own modules (peftbench/files.py:
# the one way to write and read files), which import none of ours.
FLOORS = {"peftbench": -1, "models": 0, "methods": 1, "tasks": 1, "engine": 2, "budgets": 3, "harness": 4, "cli": 5,
          "reports": 5}


def modules() -> dict[str, Path]:
    """Every module of the floors by its installed name (``peftbench.harness.train``)."""
    found = {}
    for package in FLOORS:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            found[name if package == "peftbench" else f"peftbench.{name}"] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules ``path`` imports, anywhere in the file (a module, else its package)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = [f"{node.module}.{alias.name}" for alias in node.names]
            # ``from peftbench.tasks import record`` imports the submodule; ``… import get_task`` the package
            names = [s for s in subs if s in known] + ([node.module] if any(s not in known for s in subs) else [])
        else:
            continue
        out |= {n for n in names if n in known}
    return out


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(path, known) - {name} for name, path in known.items()}


def floor(module: str) -> int:
    if module == "peftbench.__main__":  # ``python -m peftbench``: the command line's entry, on its floor
        return FLOORS["cli"]
    parts = module.split(".")
    return FLOORS[parts[1] if len(parts) > 1 and parts[1] in FLOORS else "peftbench"]


def test_no_package_imports_a_higher_floor():
    upward = sorted(f"{m} -> {n}" for m, deps in graph().items() for n in deps if floor(n) > floor(m))
    assert upward == []


def test_reports_never_import_the_task_registry():
    """Reports read what they need of a task from its records (``task_facts``: rank, paper name, VL or
    not, metrics; ``metric_directions``), so a folder of records reports the same whatever tasks this
    install knows: no file under reports/ imports ``peftbench.tasks``, inside a function or not."""
    found = sorted(f"{m} -> {n}" for m, deps in graph().items() if m.startswith("peftbench.reports")
                   for n in deps if n.split(".")[:2] == ["peftbench", "tasks"])
    assert found == []


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path of modules, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for n in sorted(edges.get(m, ())):
            if state.get(n) == 1:
                return path[path.index(n):] + [n]
            if n not in state and (cycle := visit(n)):
                return cycle
        path.pop()
        state[m] = 2
        return None

    for m in sorted(edges):
        if m not in state and (cycle := visit(m)):
            return cycle
    return None


def test_no_import_cycles():
    assert find_cycle(graph()) is None


def test_the_cycle_finder_finds_a_planted_cycle():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(edges) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.fixture(scope="module")
def sweep_folder(tmp_path_factory):
    from testkit.records import seeds, write_all

    return write_all(tmp_path_factory.mktemp("sweep"), seeds("adapter", "sst2", 1e-3, [70.0, 71.0], [60.0, 61.0]))


@pytest.mark.parametrize("command", [["--help"], ["tasks"], ["report", "SWEEP"], ["trial", "--help"]])
def test_light_commands_import_no_torch(command, sweep_folder):
    """``--help``, the task list and the report never pay for torch (or Ray)."""
    command = [str(sweep_folder) if c == "SWEEP" else c for c in command]
    probe = ("import sys, runpy; sys.argv = ['peftbench', *sys.argv[1:]]\n"
             "try:\n    runpy.run_module('peftbench.cli.main', run_name='__main__')\nexcept SystemExit:\n    pass\n"
             "heavy = sorted(m for m in ('torch', 'ray', 'transformers', 'deepspeed') if m in sys.modules)\n"
             "print('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", probe, *command], capture_output=True, text=True, cwd=ROOT,
                         timeout=120, check=True).stdout
    assert out.strip().splitlines()[-1] == "HEAVY []"
    assert ("| adapter" in out) == (command[0] == "report")  # the report was made, not an error


def test_every_import_of_ours_names_the_package():
    """``from tasks import …`` would work only from the repository's root (cwd on sys.path) and would load a
    second copy beside ``peftbench.tasks``: every file, tests and scripts included, imports ``peftbench.…``."""
    bare = set(FLOORS) - {"peftbench"} | {"vision", "tinyt5"}
    files = [p for p in ROOT.rglob("*.py") if not {".venv", ".git", "build"} & set(p.relative_to(ROOT).parts)]
    found = []
    for path in [*files, ROOT / "scripts" / "gpu-check"]:
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else [])
            found += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in bare]
    assert found == []
