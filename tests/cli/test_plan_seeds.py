"""plan-seeds on a synthetic sweep folder whose seeds decide one comparison and not the other: the spec
it writes adds seeds to the undecided one only, and resumes into the folder running only new points."""

from __future__ import annotations

import json

import pytest
import yaml

from peftbench.cli.main import main
from peftbench.cli.plan_seeds import plan
from peftbench.files import read_json
from peftbench.harness.folder import GRID_FILE, SPEC_FILE, FolderError, check_spec_file, write_sweep_files
from peftbench.harness.spec import parse_spec
from peftbench.harness.sweep import points_to_run, spec_text
from peftbench.reports import stats

from testkit.records import record, write_all

SPEC = {"name": "s", "model": "tiny-t5", "data": "fixtures", "methods": ["full", "adapter", "bitfit"],
        "tasks": ["rte"], "learning_rates": [1e-3], "seeds": [0, 1, 2], "epochs": 1}
# adapter is 20 above full with spreads of 1: decided. bitfit is 3 above with a spread of 4: undecided.
TESTS = {"full": [60, 61, 62], "adapter": [80, 81, 82], "bitfit": [60, 64, 68]}


@pytest.fixture
def folder(tmp_path):
    spec = parse_spec(SPEC)
    records = [record(p["method"], p["task"], p["learning_rate"], p["seed"], val=1.0,
                      test=float(TESTS[p["method"]][p["seed"]]), trial_id=spec.trial_at(p).trial_id, model="tiny-t5")
               for p in spec.points()]
    write_all(tmp_path, records)
    write_sweep_files(tmp_path, spec_text(spec), [cfg.trial_id for cfg in spec.trials()])
    return tmp_path


def test_seeds_go_to_the_undecided_comparison_only(folder):
    raw, lines = plan(folder, max_seeds=50)
    needed = stats.seeds_needed(3.0, 4.0, 1.0)
    assert 3 < needed <= 50
    assert [m["name"] for m in raw["methods"]] == ["full", "bitfit"]  # adapter is decided: no new seeds
    assert raw["tasks"] == ["rte"] and raw["seeds"] == list(range(needed))
    assert raw["epochs"] == 1 and raw["model"] == "tiny-t5" and raw["learning_rates"] == [1e-3]
    assert lines == [f"bitfit vs full on rte: 3 seeds, needs {needed}"]


def test_the_plan_resumes_into_the_folder_running_only_new_points(folder):
    raw, _ = plan(folder, max_seeds=50)
    spec = parse_spec(raw)
    check_spec_file(folder, spec_text(spec), name="s", resume=True)  # a part of the grid, more seeds: accepted
    points, bad = points_to_run(spec, spec.points(), folder, retry_failed=True)
    assert not bad and {p["seed"] for p in points} == set(range(3, len(raw["seeds"])))
    assert len(points) == 2 * (len(raw["seeds"]) - 3) and {p["method"] for p in points} == {"full", "bitfit"}
    before = read_json(folder / GRID_FILE, kind="grid")["trial_ids"]
    write_sweep_files(folder, spec_text(spec), [cfg.trial_id for cfg in spec.trials()])
    grid = read_json(folder / GRID_FILE, kind="grid")["trial_ids"]
    assert grid[:len(before)] == before and len(grid) == len(before) + len(points)
    assert json.loads((folder / SPEC_FILE).read_text())["seeds"] == [0, 1, 2]  # the folder keeps its own spec
    other = parse_spec({**raw, "epochs": 2})  # other settings: records that do not belong together
    with pytest.raises(FolderError, match="different spec"):
        check_spec_file(folder, spec_text(other), name="s", resume=True)


def test_max_seeds_caps_the_plan_and_says_so(folder):
    raw, (line,) = plan(folder, max_seeds=5)
    assert raw["seeds"] == [0, 1, 2, 3, 4] and "needs more than --max-seeds 5: 5 planned" in line


def test_min_effect_decides_what_the_seeds_must_detect(folder):
    # a difference of 25 is detected by three seeds a side (spreads 4 and 1): every comparison decided
    raw, lines = plan(folder, min_effect=25.0)
    assert raw is None and lines == ["every comparison is decided: no seeds to add"]


def test_the_command_writes_a_spec_the_sweep_loads(folder, capsys):
    out = folder / "more.yaml"
    assert main(["plan-seeds", str(folder), "--max-seeds", "6", "--out", str(out)]) == 0
    written = yaml.safe_load(out.read_text())
    assert written["seeds"] == list(range(6)) and [m["name"] for m in written["methods"]] == ["full", "bitfit"]
    assert f"--out {folder} --resume" in capsys.readouterr().out
    assert main(["plan-seeds", str(folder / "nowhere")]) == 2
