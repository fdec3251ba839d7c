"""One installed name: a wheel of the repository holds ``peftbench`` and its dist-info, nothing else,
and every package folder of the repository is in it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def installed_name(folder: Path) -> str:
    """``tasks/fixtures`` -> ``peftbench.tasks.fixtures`` by pyproject's package-dir mapping."""
    rel = folder.relative_to(ROOT).as_posix()
    for package, where in sorted(SETUPTOOLS["package-dir"].items(), key=lambda kv: -len(kv[1])):
        if rel == where or rel.startswith(where + "/"):
            return package + rel[len(where):].replace("/", ".")
    raise AssertionError(f"{rel} is mapped to no package (pyproject.toml [tool.setuptools.package-dir])")


def test_every_package_folder_is_listed_under_peftbench():
    folders = {p.parent for d in SETUPTOOLS["package-dir"].values() for p in (ROOT / d).rglob("__init__.py")}
    assert sorted(installed_name(f) for f in folders) == sorted(SETUPTOOLS["packages"])
    assert all(p == "peftbench" or p.startswith("peftbench.") for p in SETUPTOOLS["packages"])


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the tree (setuptools leaves build/ and egg-info where it builds)."""
    out, tree = tmp_path_factory.mktemp("wheel"), tmp_path_factory.mktemp("tree") / "peftbench"
    shutil.copytree(ROOT, tree, ignore=shutil.ignore_patterns(".git", ".venv", "build", "runs", "*.egg-info",
                                                              "__pycache__", ".pytest_cache", ".ruff_cache"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(tree)], check=True, capture_output=True, timeout=600)
    (found,) = out.glob("peftbench-*.whl")
    return found


def test_a_wheel_installs_peftbench_alone(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"peftbench", wheel.name.split("-py")[0] + ".dist-info"}
    # the floors, their data files and the tiny model travel inside it
    for path in ("peftbench/harness/train.py", "peftbench/models/spec.py", "peftbench/tasks/fixtures/sst2/train.jsonl",
                 "peftbench/tasks/builtin/glue.yaml",
                 "peftbench/models/tinyt5/tiny-t5-pretrained/model.safetensors", "peftbench/__main__.py"):
        assert path in names
    assert "peftbench/tests/test_packaging.py" not in names


def test_no_floor_imports_without_the_package_name(tmp_path):
    """Installed, ``tasks`` is not a module (a user's own ``tasks.py`` keeps its name); ours answers as
    ``peftbench.tasks``, and the command runs as ``python -m peftbench``."""
    probe = ("import importlib.util as u, json\n"
             "print(json.dumps([u.find_spec(n) is None for n in ('tasks', 'cli', 'engine', 'harness', 'methods', "
             "'models', 'reports', 'budgets', 'vision', 'tinyt5')] + [u.find_spec('peftbench.tasks') is not None]))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[" + ", ".join(["true"] * 11) + "]"
    help_text = subprocess.run([sys.executable, "-m", "peftbench", "--help"], cwd=tmp_path, capture_output=True,
                               text=True, check=True).stdout
    assert "usage: peftbench" in help_text
